import { randomUUID } from "node:crypto";

/** A fresh, well-formed API key; `name` shows in failures. */
export const key = (name: string) => `ol_api_${name}_${randomUUID().replaceAll("-", "")}`;
