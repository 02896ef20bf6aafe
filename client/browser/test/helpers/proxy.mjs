// A transparent TCP proxy between a client and the real engine that records the WebSocket
// frames in both directions, so tests can check exactly what the client sent. It strips
// Sec-WebSocket-Extensions from the upgrade request so that no compression is negotiated and
// payloads stay readable; everything else passes through byte for byte.
import net from 'node:net'

const HEADER_END = Buffer.from('\r\n\r\n')

// Parses a byte stream of WebSocket frames; calls onFrame({ kind, data }) per message.
function frameParser(onFrame) {
  let buf = Buffer.alloc(0)
  let fragments = null // { opcode, parts } while a fragmented message is in progress
  return (chunk) => {
    buf = Buffer.concat([buf, chunk])
    for (;;) {
      if (buf.length < 2) return
      const fin = (buf[0] & 0x80) !== 0
      const opcode = buf[0] & 0x0f
      const masked = (buf[1] & 0x80) !== 0
      let len = buf[1] & 0x7f
      let off = 2
      if (len === 126) {
        if (buf.length < 4) return
        len = buf.readUInt16BE(2)
        off = 4
      } else if (len === 127) {
        if (buf.length < 10) return
        len = Number(buf.readBigUInt64BE(2))
        off = 10
      }
      const maskOff = off
      if (masked) off += 4
      if (buf.length < off + len) return
      const payload = Buffer.from(buf.subarray(off, off + len))
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskOff + (i % 4)]
      buf = buf.subarray(off + len)

      if (opcode === 0x0 && fragments) {
        fragments.parts.push(payload)
        if (!fin) continue
        emit(fragments.opcode, Buffer.concat(fragments.parts))
        fragments = null
      } else if (!fin && (opcode === 0x1 || opcode === 0x2)) {
        fragments = { opcode, parts: [payload] }
      } else {
        emit(opcode, payload)
      }
    }
  }

  function emit(opcode, payload) {
    switch (opcode) {
      case 0x1: {
        const text = payload.toString('utf8')
        let data
        try {
          data = JSON.parse(text)
        } catch {
          data = text
        }
        onFrame({ kind: 'text', data })
        break
      }
      case 0x2:
        onFrame({ kind: 'binary', data: payload })
        break
      case 0x8:
        onFrame({ kind: 'close', data: { code: payload.length >= 2 ? payload.readUInt16BE(0) : null } })
        break
      case 0x9:
        onFrame({ kind: 'ping', data: payload })
        break
      case 0xa:
        onFrame({ kind: 'pong', data: payload })
        break
    }
  }
}

/** One proxied connection: `c2e` and `e2c` hold the frames seen in each direction. */
class ProxiedConnection {
  c2e = []
  e2c = []
  closed = false
  constructor(client, upstream) {
    this.client = client
    this.upstream = upstream
  }

  /** Text frames client → engine, parsed. */
  sent() {
    return this.c2e.filter((f) => f.kind === 'text').map((f) => f.data)
  }

  /** Text frames engine → client, parsed. */
  received() {
    return this.e2c.filter((f) => f.kind === 'text').map((f) => f.data)
  }

  /** Writes an unmasked server frame to the client (call only while the engine is quiet). */
  injectToClient(opcode, payload) {
    const bytes = Buffer.from(payload)
    if (bytes.length > 125) throw new Error('injectToClient: payload too large for this helper')
    this.client.write(Buffer.concat([Buffer.from([0x80 | opcode, bytes.length]), bytes]))
  }
}

export class Proxy {
  /** Connections in accept order. */
  connections = []
  #server
  #targetPort

  static async start(targetPort) {
    const p = new Proxy()
    p.#targetPort = targetPort
    p.#server = net.createServer((client) => p.#accept(client))
    await new Promise((resolve) => p.#server.listen(0, '127.0.0.1', resolve))
    return p
  }

  get url() {
    return `ws://127.0.0.1:${this.#server.address().port}`
  }

  #accept(client) {
    const upstream = net.connect(this.#targetPort, '127.0.0.1')
    const conn = new ProxiedConnection(client, upstream)
    this.connections.push(conn)
    const c2e = frameParser((f) => conn.c2e.push(f))
    const e2c = frameParser((f) => conn.e2c.push(f))

    let reqHead = Buffer.alloc(0)
    let reqDone = false
    client.on('data', (chunk) => {
      if (reqDone) {
        upstream.write(chunk)
        c2e(chunk)
        return
      }
      reqHead = Buffer.concat([reqHead, chunk])
      const i = reqHead.indexOf(HEADER_END)
      if (i < 0) return
      reqDone = true
      const head = reqHead
        .subarray(0, i)
        .toString('latin1')
        .split('\r\n')
        .filter((line) => !/^sec-websocket-extensions:/i.test(line))
        .join('\r\n')
      const rest = reqHead.subarray(i + HEADER_END.length)
      upstream.write(head + '\r\n\r\n')
      if (rest.length) {
        upstream.write(rest)
        c2e(rest)
      }
    })

    let resHead = Buffer.alloc(0)
    let resDone = false
    upstream.on('data', (chunk) => {
      client.write(chunk)
      if (resDone) {
        e2c(chunk)
        return
      }
      resHead = Buffer.concat([resHead, chunk])
      const i = resHead.indexOf(HEADER_END)
      if (i < 0) return
      resDone = true
      const rest = resHead.subarray(i + HEADER_END.length)
      if (rest.length) e2c(rest)
    })

    const end = () => {
      conn.closed = true
      client.destroy()
      upstream.destroy()
    }
    client.on('close', end)
    upstream.on('close', end)
    client.on('error', () => {})
    upstream.on('error', () => {})
  }

  /** Connections that are still open. */
  open() {
    return this.connections.filter((c) => !c.closed)
  }

  async close() {
    for (const c of this.connections) {
      c.client.destroy()
      c.upstream.destroy()
    }
    await new Promise((resolve) => this.#server.close(resolve))
  }
}
