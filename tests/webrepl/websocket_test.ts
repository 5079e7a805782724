import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { WebReplError } from "../../lib/errors.ts";
import {
  acceptFor,
  encodeFrame,
  encodeHandshakeRequest,
  encodeHandshakeResponse,
  exactHeader,
  FrameDecoder,
  HttpHeadReader,
  OPCODE,
} from "../../lib/webrepl/websocket.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("acceptFor() matches the RFC 6455 example", () => {
  assertEquals(acceptFor("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
});

Deno.test("encodeHandshakeRequest() spells Sec-WebSocket-Key exactly and ends with a blank line", () => {
  const text = dec(encodeHandshakeRequest({ host: "192.168.4.1:8266", key: "KEY=" }));
  assertEquals(
    text,
    "GET / HTTP/1.1\r\n" +
      "Host: 192.168.4.1:8266\r\n" +
      "Connection: Upgrade\r\n" +
      "Upgrade: websocket\r\n" +
      "Sec-WebSocket-Key: KEY=\r\n" +
      "Sec-WebSocket-Version: 13\r\n" +
      "\r\n",
  );
  // The device splits every header line at its first colon.
  for (const line of text.split("\r\n").slice(1, -2)) assert(line.includes(":"), line);
});

Deno.test("encodeFrame() writes an unmasked server text frame", () => {
  assertEquals(
    encodeFrame(OPCODE.text, enc("Password: ")),
    new Uint8Array([0x81, 0x0a, ...enc("Password: ")]),
  );
});

Deno.test("encodeFrame() masks a client frame (RFC 6455 §5.7 'Hello')", () => {
  const mask = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);
  assertEquals(
    encodeFrame(OPCODE.text, enc("Hello"), mask),
    new Uint8Array([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]),
  );
});

Deno.test("encodeFrame() uses the 16-bit length from 126 bytes and refuses 64-bit lengths", () => {
  const frame = encodeFrame(OPCODE.binary, new Uint8Array(300).fill(7));
  assertEquals(frame.subarray(0, 4), new Uint8Array([0x82, 0x7e, 0x01, 0x2c]));
  assertEquals(frame.length, 304);
  assertEquals(encodeFrame(OPCODE.text, new Uint8Array(125))[1], 125);
  assertEquals(encodeFrame(OPCODE.text, new Uint8Array(126))[1], 126);
  assertThrows(() => encodeFrame(OPCODE.binary, new Uint8Array(65536)), RangeError, "65535");
});

Deno.test("FrameDecoder decodes frames split across reads, byte by byte", () => {
  const mask = new Uint8Array([1, 2, 3, 4]);
  const wire = new Uint8Array([
    ...encodeFrame(OPCODE.text, enc("abc"), mask),
    ...encodeFrame(OPCODE.binary, new Uint8Array(200).fill(9)),
  ]);
  const decoder = new FrameDecoder();
  const frames = [];
  for (const b of wire) frames.push(...decoder.push(new Uint8Array([b])));
  assertEquals(frames.length, 2);
  assertEquals(frames[0]!.opcode, OPCODE.text);
  assertEquals(frames[0]!.masked, true);
  assertEquals(dec(frames[0]!.payload), "abc");
  assertEquals(frames[1]!.opcode, OPCODE.binary);
  assertEquals(frames[1]!.payload, new Uint8Array(200).fill(9));
  assertEquals(decoder.pending, 0);
});

Deno.test("FrameDecoder returns several frames from one read and keeps a partial one", () => {
  const wire = new Uint8Array([
    ...encodeFrame(OPCODE.text, enc("\r\nWebREPL connected\r\n")),
    ...encodeFrame(OPCODE.text, enc(">>> ")),
    ...encodeFrame(OPCODE.close, new Uint8Array(0)),
    0x81, // the first byte of a fourth frame
  ]);
  const decoder = new FrameDecoder();
  const frames = decoder.push(wire);
  assertEquals(frames.map((f) => [f.opcode, dec(f.payload), f.fin]), [
    [OPCODE.text, "\r\nWebREPL connected\r\n", true],
    [OPCODE.text, ">>> ", true],
    [OPCODE.close, "", true],
  ]);
  assertEquals(decoder.pending, 1);
  assertEquals(decoder.push(new Uint8Array([0x01, 0x41])).map((f) => dec(f.payload)), ["A"]);
});

Deno.test("FrameDecoder rejects a 64-bit length with WebReplError", () => {
  assertThrows(
    () => new FrameDecoder().push(new Uint8Array([0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0])),
    WebReplError,
    "64-bit length",
  );
});

Deno.test("HttpHeadReader assembles a 101 reply sent in pieces and keeps the frame after it", () => {
  const reply = new Uint8Array([
    ...encodeHandshakeResponse(acceptFor("x3JJHMbDL1EzLkh9GBhXDw==")),
    ...encodeFrame(OPCODE.text, enc("Password: ")),
  ]);
  const reader = new HttpHeadReader();
  const frames = new FrameDecoder();
  let head;
  const received = [];
  for (let at = 0; at < reply.length; at += 7) {
    const piece = reply.subarray(at, at + 7);
    if (head) {
      received.push(...frames.push(piece));
      continue;
    }
    const done = reader.push(piece);
    if (!done) continue;
    head = done.head;
    received.push(...frames.push(done.rest));
  }
  assert(head, "the head was not recognised");
  assertEquals(head.startLine, "HTTP/1.1 101 Switching Protocols");
  assertEquals(exactHeader(head, "Sec-WebSocket-Accept"), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
  assertEquals(received.map((f) => dec(f.payload)), ["Password: "]);
});

Deno.test("exactHeader() finds only the exact spelling, as the device does", () => {
  const done = new HttpHeadReader().push(
    enc("GET / HTTP/1.1\r\nsec-websocket-key: abc\r\nHost: h\r\n\r\n"),
  );
  assert(done);
  assertEquals(exactHeader(done.head, "Sec-WebSocket-Key"), undefined);
  assertEquals(exactHeader(done.head, "sec-websocket-key"), "abc");
});
