import { HeadcountError } from "../core/errors.ts";
import type { Room } from "../core/room.ts";
import type { IndexReporter, KeyRegistration } from "./cloudflare-report.ts";
import type { RoomResources } from "./cloudflare-room-store.ts";

// What the Worker asks a key's Durable Object besides visits: the key's
// numbers, daily series and history for the public API and the dashboard,
// and the admin's writes. Visits (sockets, streams, the pixel) stay in
// cloudflare-room.ts, which owns the sockets.

export interface RoomApiDeps {
  open(): Promise<RoomResources>;
  room(key: string): Room;
  /** Registers the key with the index and loads the signer: before the object's first write. */
  ready(key: string): Promise<void>;
  registration: KeyRegistration;
  reporter: IndexReporter;
}

/** The answer for /daily, /snapshot, /history, /set, /delete and /ping, or null for another path or method. */
export async function answerRoomApi(url: URL, method: string, key: () => string, deps: RoomApiDeps): Promise<Response | null> {
  switch (url.pathname) {
    case "/daily":
      return Response.json(await (await deps.open()).store.day.daily(key(), url.searchParams.get("from") ?? ""));
    case "/snapshot":
      return Response.json(await deps.room(key()).snapshot());
    case "/history":
      return Response.json(await (await deps.open()).store.history(key(), Number(url.searchParams.get("minutes") ?? 180)));
    case "/set": {
      if (method !== "POST") return null;
      const total = Number(url.searchParams.get("total"));
      if (!Number.isSafeInteger(total) || total < 0) throw new HeadcountError(400, "bad_request", "total must be a whole number of 0 or more");
      await deps.ready(key());
      await (await deps.open()).store.setTotal(key(), total);
      deps.room(key()).reset(total);
      deps.reporter.touch(true);
      return Response.json({ ok: true });
    }
    case "/delete": // admin: rows gone, watchers see 0, the index forgets the key (its place under MAX_KEYS is free)
      if (method !== "POST") return null;
      await (await deps.open()).store.deleteKey(key());
      deps.room(key()).reset(0);
      await deps.registration.forget(key());
      return Response.json({ ok: true });
    case "/ping":
      await (await deps.open()).store.ping();
      return Response.json({ status: "ready" });
  }
  return null;
}
