// A risky migration of the kind that goes wrong in production: outside a transaction
// (as large backfills often run), it rewrites every row, then fails half-way through its
// schema change. Knex cannot roll that back; the restore point taken before it can.
exports.config = { transaction: false };

exports.up = async (knex) => {
  await knex('customers').update({ name: knex.raw('upper(name)'), email: null });
  if (process.env.BREAK_MIGRATION) {
    throw new Error('column "first_name" cannot be derived for 1 row');
  }
  await knex.schema.alterTable('customers', (t) => t.string('first_name'));
};

exports.down = (knex) => knex.schema.alterTable('customers', (t) => t.dropColumn('first_name'));
