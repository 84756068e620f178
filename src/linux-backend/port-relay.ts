/**
 * The host's half of published ports (docker -p): a TCP server per port on the host, each connection it
 * accepts joined to the container through the relay's Unix socket (Plan.publish.hostDir, bound into
 * the container), after a header that names the container port: 'p', the port (2 bytes, big-endian).
 * native/publish.c, inside the container, connects it to that port on the container's loopback.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { SandboxError } from '../errors.ts';
import type { PortBinding } from '../runtime/types.ts';

/** open(2)'s O_PATH (the same number on x86_64 and aarch64): a descriptor that names a file without opening it. */
const O_PATH = 0o10000000;
/** How long a connection waits for the relay's socket while the container starts. */
const SOCKET_WAIT_MS = 5000;
const SOCKET_RETRY_MS = 20;

export interface PortRelayOptions {
  ports: PortBinding[];
  /** The container's relay directory on the host; the relay's socket is `socketName` there. */
  hostDir: string;
  socketName: string;
}

export class PortRelay {
  readonly #o: PortRelayOptions;
  readonly #servers: net.Server[] = [];
  readonly #sockets = new Set<net.Socket>();
  #bound: PortBinding[] = [];
  #closed = false;

  constructor(o: PortRelayOptions) {
    this.#o = o;
  }

  /** Where each port listens, once open() resolved (hostPort 0 resolved to the port the host gave). */
  get bindings(): readonly PortBinding[] {
    return this.#bound;
  }

  /** Listens on every host port; on a failure nothing is left listening and the error says which port and why. */
  async open(): Promise<void> {
    for (const p of this.#o.ports) {
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => this.#join(client, p.containerPort));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: p.hostIp, port: p.hostPort }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (e) {
        this.close();
        throw listenError(p, e as NodeJS.ErrnoException);
      }
      server.on('error', () => { /* (after listen: accept errors; the client just goes) */ });
      this.#servers.push(server);
      // (closed meanwhile: the container was killed while its ports were being bound)
      if (this.#closed) {
        server.close();
        return;
      }
      this.#bound.push({ ...p, hostPort: (server.address() as net.AddressInfo).port });
    }
  }

  /** Stops listening and ends every relayed connection (the container is gone); bindings becomes empty. */
  close(): void {
    this.#closed = true;
    this.#bound = [];
    for (const s of this.#servers) s.close();
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  #track(s: net.Socket): void {
    this.#sockets.add(s);
    s.on('close', () => this.#sockets.delete(s));
    s.on('error', () => { /* the close that follows ends the other side */ });
  }

  #join(client: net.Socket, containerPort: number): void {
    this.#track(client);
    if (this.#closed) { client.destroy(); return; }
    const started = Date.now();
    const attempt = (): void => {
      if (this.#closed || client.destroyed) { client.destroy(); return; }
      const inner = this.#connect();
      if (inner === 'absent' && Date.now() - started < SOCKET_WAIT_MS) {
        setTimeout(attempt, SOCKET_RETRY_MS).unref();
        return;
      }
      if (typeof inner === 'string') {
        client.destroy();
        return;
      }
      let connected = false;
      inner.once('connect', () => {
        connected = true;
        if (client.destroyed) inner.destroy();
        else this.#relay(client, inner, containerPort);
      });
      inner.once('error', (e: NodeJS.ErrnoException) => {
        // (the relay binds its socket, then listens: a connection in between is refused)
        if (!connected && (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') && Date.now() - started < SOCKET_WAIT_MS) {
          setTimeout(attempt, SOCKET_RETRY_MS).unref();
        } else if (!connected) client.destroy();
      });
    };
    attempt();
  }

  /**
   * A connection to the relay's socket: 'absent' while it is not there yet, 'invalid' when something else
   * is. The directory is the container's to write: what is there is opened without following a link,
   * checked to be a socket, and connected to through that descriptor, so the container cannot point this
   * process at another socket of the host's.
   */
  #connect(): net.Socket | 'absent' | 'invalid' {
    let fd: number;
    try {
      fd = fs.openSync(path.join(this.#o.hostDir, this.#o.socketName), O_PATH | fs.constants.O_NOFOLLOW);
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'invalid';
    }
    let socket = false;
    try {
      socket = fs.fstatSync(fd).isSocket();
    } catch { /* (not reached: fstat of an open descriptor) */ }
    if (!socket) {
      fs.closeSync(fd);
      return 'invalid';
    }
    const inner = net.connect({ path: `/proc/self/fd/${fd}`, allowHalfOpen: true });
    const release = () => { try { fs.closeSync(fd); } catch { /* closed */ } };
    inner.once('connect', release);
    inner.once('error', release);
    this.#track(inner);
    return inner;
  }

  /** Both ways, each end passed on as the other side's end (half-close); a side that fails ends both. */
  #relay(client: net.Socket, inner: net.Socket, containerPort: number): void {
    if (this.#closed) { client.destroy(); inner.destroy(); return; }
    inner.write(Uint8Array.of(0x70, containerPort >> 8, containerPort & 0xff));
    client.pipe(inner);
    inner.pipe(client);
    // The relay closed its side (both directions done, the server refused it, or the container is
    // going): the client gets what was sent, then the close.
    inner.on('close', () => {
      if (client.writableFinished) client.destroy();
      else {
        client.once('finish', () => client.destroy());
        client.end();
      }
    });
    client.on('close', (hadError) => { if (hadError || !inner.writableEnded) inner.destroy(); });
    client.resume();
  }
}

function listenError(p: PortBinding, e: NodeJS.ErrnoException): SandboxError {
  const where = `${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp}:${p.hostPort}`;
  const data = { hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, errno: e.code };
  const why = e.code === 'EADDRINUSE' ? 'the address is already in use'
    : e.code === 'EACCES' ? 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
    : e.code === 'EADDRNOTAVAIL' ? 'the host has no such address'
    : e.message;
  const code = e.code === 'EACCES' ? 'CAPABILITY_DENIED' : e.code === 'EADDRNOTAVAIL' ? 'INVALID_ARGUMENT' : 'NETWORK';
  return new SandboxError(code, `cannot publish container port ${p.containerPort} on ${where}: ${why} (${e.code ?? 'error'})`, { cause: e, data });
}
