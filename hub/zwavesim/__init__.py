"""Real zwave-js on a mock network: zwave-js's own mock serial server with the nodes in
mock.cjs, and @zwave-js/server's driver attached to it (hub/zwavesim/processes.py)."""
