/*
 * ROM and SDK declarations for boot8266 and the ota-server, written by
 * `deno task build-bootloader` (templates/etshal.h); the tree's original is kept as
 * etshal.h.orig. yaota8266's own copy declares some functions with empty parameter
 * lists (`void uart_div_modify();`), which vendor SDK 2.x headers declare with
 * parameters: gcc stops with "conflicting types". Here every prototype matches the
 * SDK's, and only what the two programs use and the SDK headers may not declare is
 * listed.
 */
#ifndef YAOTA8266_ETSHAL_H
#define YAOTA8266_ETSHAL_H

#include <os_type.h>

void ets_intr_lock(void);
void ets_intr_unlock(void);
void ets_isr_attach(int irq_no, void (*handler)(void *), void *arg);
void ets_set_idle_cb(void (*handler)(void *), void *arg);
void uart_div_modify(uint8_t uart, uint32_t divisor);

/* The ROM's MD5 (boot8266 checks the app with it); the context is opaque. */
#ifndef MD5_CTX
typedef char MD5_CTX[88];
#endif
void MD5Init(MD5_CTX *context);
void MD5Update(MD5_CTX *context, const void *data, unsigned int len);
void MD5Final(unsigned char digest[16], MD5_CTX *context);

/* The ROM's flash access. */
uint32_t SPIRead(uint32_t offset, void *buf, uint32_t len);
uint32_t SPIWrite(uint32_t offset, const void *buf, uint32_t len);
uint32_t SPIEraseSector(int sector);

#endif /* YAOTA8266_ETSHAL_H */
