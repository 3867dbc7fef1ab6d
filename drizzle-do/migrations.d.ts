// Types for the drizzle-kit generated migrations.js beside this file (the
// generator writes JavaScript only). Its shape is drizzle-orm/durable-sqlite's
// MigrationConfig; the .sql files are bundled as text by wrangler's Text rule.
declare const migrations: {
  journal: { entries: { idx: number; when: number; tag: string; breakpoints: boolean }[] };
  migrations: Record<string, string>;
};
export default migrations;
