// yaota8266 configuration, written by `deno task build-bootloader` from templates/config.h:
// change that, or the "bootloader" settings in ota.config.json, not this file.
// The tree's original is kept beside it as config.h.orig.

// Offset of the main application (the MicroPython OTA build) in flash: the size of
// yaota8266.bin (boot8266 + ota-server), aligned.
#define MAIN_APP_OFFSET {{MAIN_APP_OFFSET}}

// Baud rate for serial output; 0 leaves the ROM's default of 74880.
#define BAUD_RATE {{BAUD_RATE}}

// Modulus of the RSA public key that verifies OTA packets (exponent 3), big-endian bytes:
// {{KEY_BITS}}-bit key, fingerprint {{KEY_FINGERPRINT}}. The signature length is
// sizeof(MODULUS) - 1.
#define MODULUS {{MODULUS}}

// No valid packet for this long: the session restarts and expects offset 0 again.
#define PKT_WAIT_MS {{PKT_WAIT_MS}}

// No first packet this long after entering OTA mode: reboot (OTA mode entered by accident).
#define IDLE_REBOOT_MS {{IDLE_REBOOT_MS}}

// GPIOs whose change within GPIO_WAIT_MS of reset enters OTA mode. The default leaves out
// UART0 and the flash's QSPI pins.
#define GPIO_MASK {{GPIO_MASK}}

// How long after reset to watch GPIO_MASK.
#define GPIO_WAIT_MS {{GPIO_WAIT_MS}}

// The OTA server's serial log line for every packet (~150 characters: about 13 ms of each
// packet at 115200 baud, the ceiling of every transfer). 0 (build-bootloader --quiet-log)
// leaves those lines out; error lines stay. Read by the per-packet log macro that
// build-bootloader --quiet-log adds to ota-server/ota.c (an unprepared ota.c ignores it).
#define OTA_PACKET_LOG {{OTA_PACKET_LOG}}
