"""A Z-Stack ZNP coordinator simulator speaking TI's Monitor-and-Test protocol over TCP.

zigpy-znp connects to it with ``socket://host:port`` exactly as to a CC2652 dongle: it
forms a network, permits joins and interviews the simulated Zigbee devices behind it. The
MT payload schemas come from ``zigpy_znp.commands`` (the protocol's definitions); the
coordinator's behaviour (NVRAM, formation, joins, routing to devices) and the devices' ZDO
and ZCL wire format are our own (hub/znpsim/zstack.py, hub/znpsim/devices.py).
"""
