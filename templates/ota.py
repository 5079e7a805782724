# Frozen into the firmware by `deno task build-ota`. `import ota; ota.start()` reboots
# the board into yaota8266's OTA server: boot8266 enters OTA mode when RTC user memory
# holds the magic "yaotaota" (and clears it), see docs/device.md, "Entering OTA mode".
import machine

MAGIC = b"yaotaota"


def start():
    machine.RTC().memory(MAGIC)
    machine.reset()
