/** The drizzle-kit output folder, resolved from this file so any working directory works. */
export const MIGRATIONS_FOLDER = decodeURIComponent(new URL("../../drizzle", import.meta.url).pathname);
