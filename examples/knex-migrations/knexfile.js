// Two environments, as a Knex project usually has: SQLite for development, PostgreSQL
// (from DATABASE_URL) for production.
module.exports = {
  development: {
    client: 'better-sqlite3',
    connection: { filename: './dev.sqlite3' },
    useNullAsDefault: true,
  },
  production: {
    client: 'pg',
    connection: process.env.DATABASE_URL,
  },
};
