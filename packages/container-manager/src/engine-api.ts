import type Docker from "dockerode";
import type { DriverLog } from "./driver.js";
import { ContainerError, DockerUnavailableError, ImageNotFoundError } from "./errors.js";

/** How dockerode (docker-modem) reports an answer from the engine: the HTTP status and its JSON body. */
export type DockerApiError = Error & { statusCode?: number; code?: string; json?: { message?: string } };

/** The engine's HTTP status for a failed call; undefined when no answer came (no socket, refused, reset). */
export const statusOf = (error: unknown): number | undefined => (error as DockerApiError)?.statusCode;

/** The engine's own words for a failed call, else the transport's. */
export const apiMessage = (error: unknown): string =>
  (error as DockerApiError)?.json?.message ?? (error as Error)?.message ?? String(error);

/**
 * A proxy between us and the engine (the engine guard, nginx) answers these when the engine
 * behind it is down; the engine's own container, service and image calls never do.
 */
const PROXY_UNAVAILABLE = new Set([502, 503, 504]);

/** Turns transport failures (no socket, refused, reset) into DockerUnavailableError. */
export async function engine<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const status = statusOf(error);
    if (error instanceof ContainerError || (status !== undefined && !PROXY_UNAVAILABLE.has(status))) throw error;
    throw new DockerUnavailableError(error);
  }
}

/**
 * The last lines a backend printed, for a start failure's message. Container and service logs
 * of a non-TTY process come multiplexed (an 8-byte frame header, then the payload); the server
 * may echo its own configuration, so its key must not reach our logs.
 */
export function lastOutput(logs: Buffer, secret: string): string {
  let text = "";
  let offset = 0;
  while (offset + 8 <= logs.length) {
    const size = logs.readUInt32BE(offset + 4);
    text += logs.subarray(offset + 8, offset + 8 + size).toString("utf8");
    offset += 8 + size;
  }
  return redactKey(text, secret).trim().slice(-500);
}

/** The text with the key replaced; a spare's key is "" (nothing to hide, and `replaceAll("")` would pad every character). */
export function redactKey(text: string, key: string): string {
  return key ? text.replaceAll(key, "[redacted]") : text;
}

/** The last lines a container wrote, with `secret` redacted; "" when they cannot be read. */
export async function logTail(container: Docker.Container, secret: string): Promise<string> {
  try {
    const logs = (await container.logs({ stdout: true, stderr: true, tail: 5 })) as unknown as Buffer;
    return lastOutput(logs, secret);
  } catch {
    return "";
  }
}

/** Pulls `image`, logging its progress; ImageNotFoundError when the pull fails. */
export async function pullImage(docker: Docker, image: string, log?: DriverLog): Promise<void> {
  log?.("info", "pulling backend image", { image });
  try {
    const stream = await engine(() => docker.pull(image));
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(
        stream,
        (error: Error | null) => (error ? reject(error) : resolve()),
        (event: { status?: string; progress?: string; id?: string }) => {
          if (event.status)
            log?.("info", "pull progress", { image, status: event.status, layer: event.id, progress: event.progress });
        },
      );
    });
  } catch (error) {
    if (error instanceof DockerUnavailableError) throw error;
    throw new ImageNotFoundError(image, `pull failed: ${apiMessage(error)}`);
  }
}
