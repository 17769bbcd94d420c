"""pytest-batchgen: a course's lessons authored in a batch, one pytest item per lesson."""

import logging

# Records go where the run routes them (a lesson's log file, pytest's capture);
# before a batch has set anything up (a store retrying while the plan is made),
# they must not reach stderr through logging's last resort and bury the one line
# a batch-level error prints.
logging.getLogger(__name__).addHandler(logging.NullHandler())
