"""Top-level conftest: the plugin's own tests drive real pytest runs through pytester."""

pytest_plugins = ["pytester", "tests.support.appwrite_fixtures", "tests.support.model_fixtures"]
