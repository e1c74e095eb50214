"""The device simulator behind `homestream simulate` (CONTRACT.md sections 1-3).

- ``devices``: pure device models (seeded, time passed in, no I/O): descriptors, state reports,
  events, availability, and how actuators obey commands;
- ``floorplan``: the demo home's floor plan and a generator of synthetic homes;
- ``runner``: virtual hubs over real MQTT (one ``hub.hubclient.HubClient`` each) driven by one
  scheduler thread;
- ``provision``: homes and hub credentials for the simulated hubs;
- ``cli``: the ``homestream simulate`` command line.
"""
