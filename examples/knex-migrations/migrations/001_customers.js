exports.up = async (knex) => {
  await knex.schema.createTable('customers', (t) => {
    t.increments('id');
    t.string('name').notNullable();
    t.string('email');
  });
  await knex('customers').insert([
    { name: 'Ada Lovelace', email: 'ada@example.com' },
    { name: 'Grace Hopper', email: 'grace@example.com' },
    { name: 'Edsger Dijkstra', email: 'edsger@example.com' },
  ]);
};

exports.down = (knex) => knex.schema.dropTable('customers');
