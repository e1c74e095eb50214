// Mock Z-Wave network for zwave-js's own mock serial server (`mock-server --config`).
// Nodes 2-6 and 8 are in the network already; node 7 joins at the first inclusion.
// Command class ids: 0x25 Binary Switch, 0x26 Multilevel Switch, 0x33 Color Switch,
// 0x62 Door Lock, 0x31 Multilevel Sensor, 0x71 Notification, 0x80 Battery,
// 0x40 Thermostat Mode, 0x43 Thermostat Setpoint, 0x72 Manufacturer Specific, 0x86 Version.

// The mock controller parses every chunk it reads as exactly one frame, as a serial port
// delivers them. Over TCP the driver's ACK and its next request can arrive in one chunk:
// split the chunk into frames (ACK/NAK/CAN bytes, SOF frames by their length) first.
const splitFrames = {
  async onHostData(controller, data) {
    if (data.length <= 1) return false;
    const frames = [];
    let i = 0;
    while (i < data.length) {
      const b = data[i];
      if (b === 0x01 && i + 1 < data.length) {
        const end = i + data[i + 1] + 2;
        frames.push(data.subarray(i, end));
        i = end;
      } else {
        frames.push(b);
        i += 1;
      }
    }
    if (frames.length === 1 && typeof frames[0] !== "number") return false;
    // as the controller does with a chunk: not awaited, so an ACK read later still gets in
    for (const f of frames) void controller.serialOnData(f);
    return true;
  },
};

const sensor = (sensors, getValue) => ({ ccId: 0x31, version: 11, sensors, getValue });

module.exports.default = {
  controller: { behaviors: [splitFrames] },
  nodes: [
    // switch
    { id: 2, capabilities: { commandClasses: [0x25, 0x72, 0x86] } },
    // dimmer
    {
      id: 3,
      capabilities: {
        commandClasses: [{ ccId: 0x26, version: 4, primarySwitchType: 0x02, defaultValue: 0 }, 0x72, 0x86],
      },
    },
    // lock
    {
      id: 4,
      capabilities: {
        commandClasses: [
          {
            ccId: 0x62,
            version: 4,
            supportedOperationTypes: [1],
            supportedDoorLockModes: [0x00, 0xff],
            boltSupported: true,
          },
          0x80,
          0x72,
          0x86,
        ],
      },
    },
    // multisensor: temperature, humidity, illuminance, motion and door notifications, battery
    {
      id: 5,
      capabilities: {
        commandClasses: [
          sensor({ 1: { supportedScales: [0] }, 5: { supportedScales: [0] }, 3: { supportedScales: [1] } }, (type) =>
            ({ 1: 21.5, 5: 45, 3: 120 })[type],
          ),
          { ccId: 0x71, version: 8, supportsV1Alarm: false, notificationTypesAndEvents: { 0x07: [0x08] } },
          0x80,
          0x72,
          0x86,
        ],
      },
    },
    // thermostat
    {
      id: 6,
      capabilities: {
        commandClasses: [
          { ccId: 0x40, version: 3, supportedModes: [0, 1, 2, 3] },
          {
            ccId: 0x43,
            version: 3,
            setpoints: {
              1: { minValue: 5, maxValue: 30, defaultValue: 20, scale: "°C" },
              2: { minValue: 15, maxValue: 35, defaultValue: 26, scale: "°C" },
            },
          },
          sensor({ 1: { supportedScales: [0] } }, () => 20.5),
          0x72,
          0x86,
        ],
      },
    },
    // colour bulb: red, green, blue
    {
      id: 8,
      capabilities: {
        commandClasses: [
          { ccId: 0x26, version: 4, primarySwitchType: 0x02, defaultValue: 99 },
          { ccId: 0x33, version: 3, colorComponents: { 2: 255, 3: 0, 4: 0 } },
          0x72,
          0x86,
        ],
      },
    },
  ],
  onInit(controller) {
    // joins at the first inclusion: a plug
    controller.nodePendingInclusion = { id: 7, capabilities: { commandClasses: [0x25, 0x72, 0x86] } };
  },
};
