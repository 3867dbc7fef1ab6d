// Typed errors. The edge (app.ts, socket adapters) turns them into an HTTP
// status or a WebSocket close code; nothing in core knows about Response.

export class HeadcountError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "HeadcountError";
    this.status = status;
    this.code = code;
  }
}

export class InvalidKeyError extends HeadcountError {
  constructor(message: string) {
    super(400, "invalid_key", message);
    this.name = "InvalidKeyError";
  }
}

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

/** A visit that could not be committed before its deadline. */
export class CommitTimeoutError extends Error {
  constructor() {
    super("visit not recorded: database unavailable");
    this.name = "CommitTimeoutError";
  }
}

/** The server is shutting down; the visit was never started. */
export class ShuttingDownError extends Error {
  constructor() {
    super("server is shutting down");
    this.name = "ShuttingDownError";
  }
}

/** The database cannot be reached (down, restarting, refusing connections). */
export class StoreUnavailableError extends HeadcountError {
  constructor(cause: string) {
    super(503, "database_unavailable", `database unavailable: ${cause}`);
    this.name = "StoreUnavailableError";
  }
}
