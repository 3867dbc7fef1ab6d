import type { DatabaseSync, StatementSync } from "node:sqlite";
import { sql } from "drizzle-orm/sql/sql";
import { StoreUnavailableError } from "../../core/errors.ts";
import { render, type Query, type Row, type SqliteExecutor, type Values } from "./executor.ts";
import { asUnavailable } from "./file-errors.ts";
import { bare } from "./names.ts";
import { settings } from "./schema.ts";

// node:sqlite's DatabaseSync behind the executor contract (executor.ts), for
// the file in DATA_DIR (file.ts). Disk faults (full, read-only, I/O errors)
// surface as core's StoreUnavailableError, which the batcher retries.

/** Prepared statements kept per connection; the store's queries are a few dozen shapes. */
const STATEMENT_CACHE = 64;

export class FileExecutor implements SqliteExecutor {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  /** Set by a failed write, cleared by a commit: readiness probes the disk while it is set. */
  failing: StoreUnavailableError | null = null;

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  #prepare(query: Query, values?: Values): { statement: StatementSync; params: unknown[] } {
    const { text, params } = render(query, values);
    let statement = this.#statements.get(text);
    if (statement === undefined) {
      if (this.#statements.size >= STATEMENT_CACHE) this.#statements.clear();
      statement = this.#db.prepare(text);
      this.#statements.set(text, statement);
    }
    return { statement, params };
  }

  #guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      const mapped = asUnavailable(err);
      if (mapped instanceof StoreUnavailableError) this.failing = mapped;
      throw mapped;
    }
  }

  all(query: Query, values?: Values): Row[] {
    return this.#guard(() => {
      const { statement, params } = this.#prepare(query, values);
      // node:sqlite takes null, numbers, bigints, strings and bytes: what the store binds.
      return statement.all(...(params as Array<string | number | null>)) as Row[];
    });
  }

  run(query: Query, values?: Values): void {
    this.#guard(() => {
      const { statement, params } = this.#prepare(query, values);
      statement.run(...(params as Array<string | number | null>));
    });
  }

  script(text: string): void {
    this.#guard(() => this.#db.exec(text));
  }

  transaction<T>(fn: () => T): T {
    if (this.#db.isTransaction) return fn();
    return this.#guard(() => {
      this.#db.exec("begin immediate");
      try {
        const result = fn();
        this.#db.exec("commit");
        this.failing = null;
        return result;
      } catch (err) {
        // A failed COMMIT (disk full, I/O error) may already have rolled back;
        // a rollback that fails too must not hide why.
        try {
          if (this.#db.isTransaction) this.#db.exec("rollback");
        } catch {
          // the connection recovers on its next transaction
        }
        throw err;
      }
    });
  }

  /** synchronous = FULL: a commit has reached the disk when it returns. */
  async durable(): Promise<void> {}

  ping(): void {
    this.#guard(() => this.#db.prepare("select 1").get());
    // After a failed write, readiness stays down until a write gets through:
    // a full or read-only disk still answers reads.
    if (this.failing !== null) {
      this.transaction(() =>
        this.run(sql`insert into ${settings} (${bare(settings.name)}, ${bare(settings.value)}) values ('write_probe', ${String(Date.now())})
          on conflict (${bare(settings.name)}) do update set ${bare(settings.value)} = excluded.${bare(settings.value)}`),
      );
    }
  }

  close(): void {
    this.#statements.clear();
    if (this.#db.isOpen) this.#db.close();
  }
}

