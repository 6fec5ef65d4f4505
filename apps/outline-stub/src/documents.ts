import { randomUUID } from "node:crypto";

export interface Document {
  id: string;
  title: string;
  text: string;
  createdAt: string;
}

/** The stand-in for an Outline workspace: one per server process, like one user's wiki. */
export class DocumentStore {
  readonly #documents = new Map<string, Document>();

  constructor(seed: ReadonlyArray<Pick<Document, "title" | "text">> = []) {
    for (const document of seed) this.create(document.title, document.text);
  }

  create(title: string, text: string): Document {
    const document = { id: randomUUID(), title, text, createdAt: new Date().toISOString() };
    this.#documents.set(document.id, document);
    return document;
  }

  read(id: string): Document | undefined {
    return this.#documents.get(id);
  }

  search(query: string, limit = 25): Document[] {
    const needle = query.toLowerCase();
    return [...this.#documents.values()]
      .filter((document) => `${document.title}\n${document.text}`.toLowerCase().includes(needle))
      .slice(0, limit);
  }
}
