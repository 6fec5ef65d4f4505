import type { Bindings, Logger } from "pino";

/**
 * A request's logger, made when something first logs through it. pino's `child` writes its
 * bindings through the key redaction (log-redaction.ts: its wildcard paths run on every
 * field), about 14 µs for the two children a request had (request id, then user), and a warm
 * request that succeeds logs nothing but its access line (`accessLog`). The proxy forwards
 * every property to the real child, so callers see a pino `Logger` like any other.
 */
export function lazyChild(parent: Logger, bindings: () => Bindings): Logger {
  let child: Logger | undefined;
  const real = () => {
    child ??= parent.child(bindings());
    return child;
  };
  return new Proxy({} as Logger, {
    get(_unused, property) {
      const target = real();
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The access line's fields, all of them the gateway's own: no header, body or key can reach it. */
export interface AccessFields {
  /** The request id (x-request-id, checked to be `[\w.-]{1,64}`, or one the gateway made). */
  req: string;
  /** The user's tag (a prefix of HMAC(key)); none before authentication. */
  user: string | undefined;
  method: string;
  status: number;
  ms: number;
}

/**
 * One line per /mcp request, `{req, user, method, status, ms, msg: "request"}`: the fields a
 * per-request child logger gave it, without the child. It goes through a child of `logger`
 * without redaction: its fields are typed above and none can carry a key, and the redaction's
 * wildcard paths cost about 20 µs per line (the largest item of the warm path's profile).
 */
export function accessLog(logger: Logger): (fields: AccessFields) => void {
  const plain = logger.child({}, { redact: [] });
  return (fields) => plain.info(fields, "request");
}
