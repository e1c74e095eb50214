"""Virtual BLE: bumble's in-process controllers on one link, with real GATT peripherals."""
