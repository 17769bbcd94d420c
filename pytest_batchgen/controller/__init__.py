"""What runs only on the controller: planning a batch before the session, and keeping
its record (batch log, summary, dry-run plan, HTML report) from the test reports.

Under xdist that is the controller process; with -n 0 the one process is both
controller and worker. Nothing here runs a lesson or imports the worker side:
it learns the author's and the store's facts from values handed to it.
"""
