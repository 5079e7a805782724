# Frozen into the firmware by `deno task build-ota`. `import ota; ota.start()` reboots
# the board into yaota8266's OTA server: boot8266 enters OTA mode when RTC user memory
# holds the magic "yaotaota" (and clears it), see docs/device.md, "Entering OTA mode".
# BUILD and VERSION name the build this firmware is: build-ota writes them into the copy
# it freezes ('deno task status' reads them). None here, and so on firmware built without.
import machine

MAGIC = b"yaotaota"
BUILD = None
VERSION = None
# The same, as one string that stays readable in the image's frozen bytecode (inspect, sim).
BUILD_STAMP = None


def start():
    machine.RTC().memory(MAGIC)
    machine.reset()
