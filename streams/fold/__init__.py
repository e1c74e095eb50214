"""The stream workers' logic: a deterministic fold of each home's events into state.

- ``dispatch``: ``Fold``, which hands each input event to the handlers the processors
  declared for it, and ``PROCESSORS``; ``fold`` is the reference fold;
- ``declaration``: how a processor is declared (inputs, tables, timers);
- ``home``: the home processor, declared over the concerns below;
- ``scenes``: the scenes processor: scene runs (``scene_runs``) and group commands
  (``groups``) over the home's documents (``home_docs``) and its agenda (``agenda``);
- ``registry``: discovery, removal, reports (parking, availability, battery);
- ``commands``: commands, acks and their status lifecycle;
- ``health``: the tick (timeouts, silence -> offline, parked reports expiring);
- ``shadow_api``: the AWS shadow API's GET / UPDATE / DELETE requests;
- ``shadows``: a device's shadow in the state and the events its changes emit;
- ``context``: what a handler works with (state, time, outputs with derived ids);
- ``store``, ``config``: the state interface, the settings.

Which homes a tick has work for is the runtime's index, ``streams.due``.
"""
