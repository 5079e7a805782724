/* >>> RTC trigger, added by `deno task build-bootloader` (templates/rtc_trigger.c) */
/*
 * Software entry into OTA mode. On the running board, `import ota; ota.start()` (or
 * `machine.RTC().memory(b"yaotaota")` then `machine.reset()`) leaves the 8 bytes
 * "yaotaota" in RTC user memory, which keeps its content across a reset.
 * machine.RTC().memory() stores the length of its data in the word at
 * 0x60001000 + 512 + 16 and the data from 0x60001000 + 512 + 20 on.
 * The request is honoured once: its first word becomes "zota", so the next reset runs
 * the app again (and an OTA server that gets no packet reboots into the app).
 */
#define RTC_TRIGGER_LENGTH ((volatile uint32_t *)(0x60001000 + 512 + 16))
#define RTC_TRIGGER_DATA ((volatile uint32_t *)(0x60001000 + 512 + 20))
#define RTC_TRIGGER_WORD0 0x746f6179 /* "yaot", read little-endian */
#define RTC_TRIGGER_WORD1 0x61746f61 /* "aota" */
#define RTC_TRIGGER_TAKEN 0x746f617a /* "zota": the request was taken */

static bool check_rtc_trigger(void)
{
    if (*RTC_TRIGGER_LENGTH < 8) {
        return false;
    }
    if (RTC_TRIGGER_DATA[0] != RTC_TRIGGER_WORD0 || RTC_TRIGGER_DATA[1] != RTC_TRIGGER_WORD1) {
        return false;
    }
    RTC_TRIGGER_DATA[0] = RTC_TRIGGER_TAKEN;
    _printf("OTA requested: magic word in RTC memory\n");
    return true;
}
/* <<< RTC trigger */

