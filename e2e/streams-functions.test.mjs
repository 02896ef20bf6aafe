// ISSUE "event-sourced streams": stream::* and state::* shapes
// (docs/wire-protocol.md#stream-functions and #state-functions) and the update ops
// (docs/wire-protocol.md#update-operations) through stream::update and state::update.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  startEngine, rawWorker, makeWorker, connected, shutdownWorkers, GENERATIONS, rejection, uid,
} from './lib/engine.mjs'

const DOC_URL = 'https://iii.dev/docs/workers/iii-state#error-codes'

let engine
before(async () => { engine = await startEngine() })
after(async () => {
  await shutdownWorkers()
  await engine?.cleanup()
})

for (const gen of GENERATIONS) {
  describe(`stream::* shapes with iii-sdk@${gen.name}`, () => {
    let w
    const S = `st-${gen.name}`
    const call = (function_id, payload) => w.trigger({ function_id, payload })
    before(async () => {
      w = await makeWorker(gen, engine.workerUrl)
      await connected(w)
    })

    it('stream::set returns {old_value, new_value} with both keys', async () => {
      const v1 = { id: 'a1', title: 'milk', completed: false }
      const r1 = await call('stream::set', { stream_name: S, group_id: 'g', item_id: 'a1', data: v1 })
      assert.deepEqual(r1, { old_value: null, new_value: v1 })
      const v2 = { id: 'a1', title: 'milk', completed: true }
      const r2 = await call('stream::set', { stream_name: S, group_id: 'g', item_id: 'a1', data: v2 })
      assert.deepEqual(r2, { old_value: v1, new_value: v2 })
      // Replace wholesale, no merge.
      const r3 = await call('stream::set', { stream_name: S, group_id: 'g', item_id: 'a1', data: { only: 1 } })
      assert.deepEqual(r3, { old_value: v2, new_value: { only: 1 } })
      assert.deepEqual(await call('stream::get', { stream_name: S, group_id: 'g', item_id: 'a1' }), { only: 1 })
    })

    it('stream::get of a missing item / group / stream resolves undefined; a stored null resolves null', async () => {
      assert.equal(await call('stream::get', { stream_name: S, group_id: 'g', item_id: 'nope' }), undefined)
      assert.equal(await call('stream::get', { stream_name: S, group_id: 'no-group', item_id: 'x' }), undefined)
      assert.equal(await call('stream::get', { stream_name: uid('no-stream'), group_id: 'g', item_id: 'x' }), undefined)
      const r = await call('stream::set', { stream_name: S, group_id: 'g', item_id: 'nul', data: null })
      assert.deepEqual(r, { old_value: null, new_value: null })
      assert.equal(await call('stream::get', { stream_name: S, group_id: 'g', item_id: 'nul' }), null)
    })

    it('stream values of every JSON type round-trip', async () => {
      const values = [0, -1.25, 'str', '', true, false, [1, [2, { a: null }]], { deep: { er: ['x'] } }, 'ünï©ødé 😀']
      for (const [i, v] of values.entries()) {
        await call('stream::set', { stream_name: S, group_id: 'types', item_id: `t${i}`, data: v })
        assert.deepEqual(await call('stream::get', { stream_name: S, group_id: 'types', item_id: `t${i}` }), v)
      }
    })

    it('stream::delete returns {old_value} or {old_value: null}', async () => {
      await call('stream::set', { stream_name: S, group_id: 'd', item_id: 'x', data: { v: 1 } })
      assert.deepEqual(await call('stream::delete', { stream_name: S, group_id: 'd', item_id: 'x' }), { old_value: { v: 1 } })
      assert.deepEqual(await call('stream::delete', { stream_name: S, group_id: 'd', item_id: 'x' }), { old_value: null })
      assert.equal(await call('stream::get', { stream_name: S, group_id: 'd', item_id: 'x' }), undefined)
    })

    it('stream::list returns values in insertion order; overwrite keeps position; delete + re-set moves to the end', async () => {
      const G = uid('order')
      for (const id of ['c', 'a', 'b']) await call('stream::set', { stream_name: S, group_id: G, item_id: id, data: { id } })
      assert.deepEqual(await call('stream::list', { stream_name: S, group_id: G }), [{ id: 'c' }, { id: 'a' }, { id: 'b' }])
      await call('stream::set', { stream_name: S, group_id: G, item_id: 'a', data: { id: 'a', v: 2 } })
      assert.deepEqual(await call('stream::list', { stream_name: S, group_id: G }), [{ id: 'c' }, { id: 'a', v: 2 }, { id: 'b' }])
      await call('stream::delete', { stream_name: S, group_id: G, item_id: 'c' })
      await call('stream::set', { stream_name: S, group_id: G, item_id: 'c', data: { id: 'c', v: 3 } })
      assert.deepEqual(await call('stream::list', { stream_name: S, group_id: G }), [{ id: 'a', v: 2 }, { id: 'b' }, { id: 'c', v: 3 }])
      assert.deepEqual(await call('stream::list', { stream_name: S, group_id: uid('empty') }), [])
      assert.deepEqual(await call('stream::list', { stream_name: uid('nostream'), group_id: 'g' }), [])
    })

    it('stream::list_groups returns a bare array of group ids', async () => {
      const S2 = uid(`lg-${gen.name}`)
      for (const g of ['g2', 'g1', 'g3']) await call('stream::set', { stream_name: S2, group_id: g, item_id: 'i', data: 1 })
      const groups = await call('stream::list_groups', { stream_name: S2 })
      assert.ok(Array.isArray(groups), JSON.stringify(groups))
      assert.deepEqual([...groups].sort(), ['g1', 'g2', 'g3'])
      assert.deepEqual(await call('stream::list_groups', { stream_name: uid('nostream') }), [])
      // A stream named like a prefix of another does not see its groups.
      await call('stream::set', { stream_name: `${S2}:b`, group_id: 'other', item_id: 'i', data: 1 })
      assert.deepEqual([...await call('stream::list_groups', { stream_name: S2 })].sort(), ['g1', 'g2', 'g3'])
    })

    it('stream::update returns {old_value, new_value} and omits errors when there are none', async () => {
      const G = uid('upd')
      const r1 = await call('stream::update', { stream_name: S, group_id: G, item_id: 'x', ops: [] })
      assert.deepEqual(r1, { old_value: null, new_value: {} })
      assert.ok(!('errors' in r1))
      const r2 = await call('stream::update', { stream_name: S, group_id: G, item_id: 'x', ops: [{ type: 'set', path: 'completed', value: true }] })
      assert.deepEqual(r2, { old_value: {}, new_value: { completed: true } })
      assert.ok(!('errors' in r2))
      assert.deepEqual(await call('stream::get', { stream_name: S, group_id: G, item_id: 'x' }), { completed: true })
    })

    it('stream::send resolves null and stores nothing', async () => {
      const G = uid('send')
      assert.equal(await call('stream::send', { stream_name: S, group_id: G, type: 'ping', data: { x: 1 } }), null)
      assert.equal(await call('stream::send', { stream_name: S, group_id: G, type: 'ping', data: null, id: 'i1' }), null)
      assert.deepEqual(await call('stream::list', { stream_name: S, group_id: G }), [])
    })

    it('stream::list_all lists streams sorted with their groups sorted, and a count', async () => {
      const S3 = uid(`la-${gen.name}`)
      for (const g of ['z', 'a', 'm']) await call('stream::set', { stream_name: S3, group_id: g, item_id: 'i', data: 1 })
      const r = await call('stream::list_all', {})
      assert.deepEqual(Object.keys(r).sort(), ['count', 'stream'])
      assert.equal(r.count, r.stream.length)
      const ids = r.stream.map((s) => s.id)
      assert.deepEqual(ids, [...ids].sort(), 'streams sorted by id')
      assert.deepEqual(r.stream.find((s) => s.id === S3), { id: S3, groups: ['a', 'm', 'z'] })
      const r2 = await call('stream::list_all')
      assert.equal(r2.count, r2.stream.length)
    })

    it('empty strings are legal names', async () => {
      const r = await call('stream::set', { stream_name: '', group_id: '', item_id: '', data: { empty: true } })
      assert.equal(r.new_value.empty, true)
      assert.deepEqual(await call('stream::get', { stream_name: '', group_id: '', item_id: '' }), { empty: true })
    })

    it('deserialization_error names the missing or mistyped field; nothing is written', async () => {
      const cases = [
        [{ group_id: 'g', item_id: 'i', data: 1 }, 'stream_name'],
        [{ stream_name: 5, group_id: 'g', item_id: 'i', data: 1 }, 'stream_name'],
        [{ stream_name: S, group_id: 'g', data: 1 }, 'item_id'],
        [{ stream_name: S, group_id: 'g', item_id: 'never-written' }, 'data'],
      ]
      for (const [payload, field] of cases) {
        const e = await rejection(call('stream::set', payload), `stream::set ${JSON.stringify(payload)}`)
        assert.equal(e.code, 'deserialization_error', `${JSON.stringify(payload)} -> ${e.code}: ${e.message}`)
        assert.ok(e.message.includes(field), `message should name ${field}: ${e.message}`)
      }
      assert.equal(await call('stream::get', { stream_name: S, group_id: 'g', item_id: 'never-written' }), undefined)
      const e2 = await rejection(call('stream::get', 'not an object'))
      assert.equal(e2.code, 'deserialization_error')
      const e3 = await rejection(call('stream::list', { stream_name: S }))
      assert.equal(e3.code, 'deserialization_error')
      assert.ok(e3.message.includes('group_id'), e3.message)
    })
  })

  describe(`state::* shapes with iii-sdk@${gen.name}`, () => {
    let w
    const call = (function_id, payload) => w.trigger({ function_id, payload })
    before(async () => {
      w = await makeWorker(gen, engine.workerUrl)
      await connected(w)
    })

    it('state::set / get / delete / list / list_groups', async () => {
      const scope = uid(`scope-${gen.name}`)
      assert.deepEqual(await call('state::set', { scope, key: 'k1', value: { v: 1 } }), { old_value: null, new_value: { v: 1 } })
      assert.deepEqual(await call('state::set', { scope, key: 'k1', value: { v: 2 } }), { old_value: { v: 1 }, new_value: { v: 2 } })
      assert.deepEqual(await call('state::set', { scope, key: 'k2', data: 'via data alias' }), { old_value: null, new_value: 'via data alias' })
      assert.deepEqual(await call('state::get', { scope, key: 'k1' }), { v: 2 })
      assert.equal(await call('state::get', { scope, key: 'missing' }), undefined)
      assert.deepEqual(await call('state::list', { scope }), [{ v: 2 }, 'via data alias'])
      assert.deepEqual(await call('state::list', { scope: uid('noscope') }), [])
      // delete returns the removed value itself, or nothing.
      assert.deepEqual(await call('state::delete', { scope, key: 'k1' }), { v: 2 })
      assert.equal(await call('state::delete', { scope, key: 'k1' }), undefined)
      assert.equal(await call('state::get', { scope, key: 'k1' }), undefined)
      const g = await call('state::list_groups', {})
      assert.deepEqual(Object.keys(g), ['groups'])
      assert.ok(g.groups.includes(scope))
      assert.deepEqual(g.groups, [...new Set(g.groups)].sort(), 'groups sorted and de-duplicated')
      const g2 = await call('state::list_groups')
      assert.deepEqual(g2, g)
    })

    it('state null values: set null then get resolves null', async () => {
      const scope = uid('nullscope')
      assert.deepEqual(await call('state::set', { scope, key: 'n', value: null }), { old_value: null, new_value: null })
      assert.equal(await call('state::get', { scope, key: 'n' }), null)
    })

    it('state and stream stores are separate', async () => {
      const name = uid('shared-name')
      await call('state::set', { scope: name, key: 'k', value: 'state' })
      await call('stream::set', { stream_name: name, group_id: 'k', item_id: 'k', data: 'stream' })
      assert.equal(await call('state::get', { scope: name, key: 'k' }), 'state')
      assert.equal(await call('stream::get', { stream_name: name, group_id: 'k', item_id: 'k' }), 'stream')
      assert.deepEqual(await call('state::list', { scope: name }), ['state'])
    })

    it('state::update shape and deserialization errors', async () => {
      const scope = uid('updscope')
      const r = await call('state::update', { scope, key: 'c', ops: [{ type: 'increment', path: 'count', by: 2 }] })
      assert.deepEqual(r, { old_value: null, new_value: { count: 2 } })
      assert.ok(!('errors' in r))
      const e = await rejection(call('state::set', { key: 'k', value: 1 }))
      assert.equal(e.code, 'deserialization_error')
      assert.ok(e.message.includes('scope'), e.message)
    })
  })
}

// ------------------------------------------ update ops (docs/wire-protocol.md#update-operations)

const M = Symbol('missing')
const nest = (depth) => (depth <= 1 ? {} : { a: nest(depth - 1) })
const manyKeys = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))
const E = (op_index, code, ...mustInclude) => ({ op_index, code, mustInclude })

const OPS = [
  ['empty ops on a missing item writes {}', M, [], {}],
  ['set a key', { a: 1 }, [{ type: 'set', path: 'b', value: 2 }], { a: 1, b: 2 }],
  ['set the root', { a: 1 }, [{ type: 'set', path: '', value: 'x' }], 'x'],
  ['set the root to null', { a: 1 }, [{ type: 'set', path: '', value: null }], null],
  ['set without value stores null', { a: 1 }, [{ type: 'set', path: 'a' }], { a: null }],
  ['dotted path is one literal key', {}, [{ type: 'set', path: 'user.name', value: 'bob' }], { 'user.name': 'bob' }],
  ['set on a missing item starts from {}', M, [{ type: 'set', path: 'a', value: 1 }], { a: 1 }],
  ['set a key on a non-object fails', 'str', [{ type: 'set', path: 'k', value: 1 }], 'str', [E(0, 'set.target_not_object', 'k', 'string')]],
  ['merge at root is shallow', { a: 1, b: { x: 1 } }, [{ type: 'merge', value: { b: { y: 2 }, c: 3 } }], { a: 1, b: { y: 2 }, c: 3 }],
  ['merge at path "" is the root', { a: 1 }, [{ type: 'merge', path: '', value: { b: 2 } }], { a: 1, b: 2 }],
  ['merge at path [] is the root', { a: 1 }, [{ type: 'merge', path: [], value: { b: 2 } }], { a: 1, b: 2 }],
  ['merge at root of a non-object is a silent no-op', 5, [{ type: 'merge', value: { a: 1 } }], 5],
  ['merge value must be an object', { a: 1 }, [{ type: 'merge', value: [1] }], { a: 1 }, [E(0, 'merge.value.not_an_object', 'array')]],
  ['nested merge creates intermediates (spec example)', { sessions: { existing: { ts: 'anchor' } } },
    [{ type: 'merge', path: ['sessions', 'abc'], value: { ts: 'chunk' } }],
    { sessions: { existing: { ts: 'anchor' }, abc: { ts: 'chunk' } } }],
  ['two merges at one path accumulate (spec example)', {},
    [{ type: 'merge', path: 'session-abc', value: { author: 'alice' } }, { type: 'merge', path: 'session-abc', value: { ts: 'chunk' } }],
    { 'session-abc': { author: 'alice', ts: 'chunk' } }],
  ['nested merge replaces non-object intermediates', { a: 5, b: [1] }, [{ type: 'merge', path: ['a', 'b'], value: { x: 1 } }], { a: { b: { x: 1 } }, b: [1] }],
  ['nested merge on a non-object root replaces it with {}', 'str', [{ type: 'merge', path: ['k'], value: { x: 1 } }], { k: { x: 1 } }],
  ['nested merge into a null target', { k: null }, [{ type: 'merge', path: 'k', value: { x: 1 } }], { k: { x: 1 } }],
  ['increment a field', { count: 0 }, [{ type: 'increment', path: 'count', by: 5 }], { count: 5 }],
  ['increment creates a missing key', {}, [{ type: 'increment', path: 'n', by: 4 }], { n: 4 }],
  ['decrement creates a missing key negative', {}, [{ type: 'decrement', path: 'n', by: 4 }], { n: -4 }],
  ['decrement a field', { n: 10 }, [{ type: 'decrement', path: 'n', by: 3 }], { n: 7 }],
  ['increment the root of a missing item', M, [{ type: 'increment', path: '', by: 3 }], 3],
  ['decrement the root of a missing item', M, [{ type: 'decrement', path: '', by: 3 }], -3],
  ['increment a root number', 7, [{ type: 'increment', path: '', by: 2 }], 9],
  ['increment the root of an object fails', { a: 1 }, [{ type: 'increment', path: '', by: 1 }], { a: 1 }, [E(0, 'increment.not_number', 'root', 'object')]],
  ['increment a string field fails', { a: 'x' }, [{ type: 'increment', path: 'a', by: 1 }], { a: 'x' }, [E(0, 'increment.not_number', 'a', 'string')]],
  ['increment a null field fails', { a: null }, [{ type: 'increment', path: 'a', by: 1 }], { a: null }, [E(0, 'increment.not_number', 'a', 'null')]],
  ['increment by 0 still type-checks', { a: 'x' }, [{ type: 'increment', path: 'a', by: 0 }], { a: 'x' }, [E(0, 'increment.not_number')]],
  ['decrement a boolean fails', { a: true }, [{ type: 'decrement', path: 'a', by: 1 }], { a: true }, [E(0, 'decrement.not_number', 'a', 'boolean')]],
  ['increment a key of a non-object fails', 'str', [{ type: 'increment', path: 'k', by: 1 }], 'str', [E(0, 'increment.target_not_object')]],
  ['a float stays a float', { f: 1.5 }, [{ type: 'increment', path: 'f', by: 1 }], { f: 2.5 }],
  ['append a string to a missing key stores the string', {}, [{ type: 'append', path: 'events', value: 'x' }], { events: 'x' }],
  ['append a non-string to a missing key makes an array', {}, [{ type: 'append', path: 'events', value: 1 }], { events: [1] }],
  ['append pushes an array as one element', { events: [1] }, [{ type: 'append', path: 'events', value: [2, 3] }], { events: [1, [2, 3]] }],
  ['append concatenates strings', { s: 'ab' }, [{ type: 'append', path: 's', value: 'cd' }], { s: 'abcd' }],
  ['append a number to a string fails', { s: 'ab' }, [{ type: 'append', path: 's', value: 1 }], { s: 'ab' }, [E(0, 'append.type_mismatch', 's')]],
  ['append to a number fails', { n: 1 }, [{ type: 'append', path: 'n', value: 'x' }], { n: 1 }, [E(0, 'append.type_mismatch', 'n', 'number')]],
  ['append to a null leaf', { n: null }, [{ type: 'append', path: 'n', value: 5 }], { n: [5] }],
  ['append a string at the root of a missing item', M, [{ type: 'append', path: '', value: 'abc' }], 'abc'],
  ['append a number at the root of a missing item', M, [{ type: 'append', value: 5 }], [5]],
  ['append at a root array', [1], [{ type: 'append', path: '', value: 2 }], [1, 2]],
  ['append at a root object fails', { a: 1 }, [{ type: 'append', path: '', value: 2 }], { a: 1 }, [E(0, 'append.type_mismatch', 'root', 'object')]],
  ['append at a nested path always makes an array', {}, [{ type: 'append', path: ['a', 'b'], value: 'x' }], { a: { b: ['x'] } }],
  ['append to a nested number fails naming the segments', { a: { b: 1 } }, [{ type: 'append', path: ['a', 'b'], value: 'x' }], { a: { b: 1 } }, [E(0, 'append.type_mismatch', '[a, b]')]],
  ['append a key of a non-object fails', 5, [{ type: 'append', path: 'k', value: 1 }], 5, [E(0, 'append.target_not_object')]],
  ['remove a key', { a: 1, b: 2 }, [{ type: 'remove', path: 'a' }], { b: 2 }],
  ['remove an absent key is silent', { a: 1 }, [{ type: 'remove', path: 'zz' }], { a: 1 }],
  ['remove the root', { a: 1 }, [{ type: 'remove', path: '' }], null],
  ['remove a key of a non-object fails', 'x', [{ type: 'remove', path: 'k' }], 'x', [E(0, 'remove.target_not_object')]],
  ['ops apply left to right; a failing op is skipped', { count: 0, title: 'x' },
    [{ type: 'increment', path: 'count', by: 1 }, { type: 'increment', path: 'title', by: 1 }, { type: 'set', path: 'done', value: true }, { type: 'increment', path: 'count', by: 1 }],
    { count: 2, title: 'x', done: true }, [E(1, 'increment.not_number', 'title')]],
  ['several failing ops are all reported with their index', {},
    [{ type: 'set', path: '__proto__', value: 1 }, { type: 'set', path: 'ok', value: 1 }, { type: 'merge', value: 3 }],
    { ok: 1 }, [E(0, 'set.path.proto_polluted'), E(2, 'merge.value.not_an_object')]],
  ['path deeper than 32 segments', {}, [{ type: 'merge', path: Array(33).fill('a'), value: {} }], {}, [E(0, 'merge.path.too_deep', '32')]],
  ['32 segments are fine', {}, [{ type: 'append', path: Array(32).fill('a'), value: 1 }], Array(32).fill('a').reduceRight((acc, k) => ({ [k]: acc }), [1])],
  ['an empty path segment', {}, [{ type: 'merge', path: ['a', ''], value: { x: 1 } }], {}, [E(0, 'merge.path.empty_segment')]],
  ['a segment longer than 256 bytes', {}, [{ type: 'set', path: 'é'.repeat(129), value: 1 }], {}, [E(0, 'set.path.segment_too_long', '256')]],
  ['a segment of exactly 256 bytes is fine', {}, [{ type: 'set', path: 'k'.repeat(256), value: 1 }], { ['k'.repeat(256)]: 1 }],
  ['__proto__ as a path', {}, [{ type: 'set', path: '__proto__', value: 1 }], {}, [E(0, 'set.path.proto_polluted')]],
  ['constructor as a path', {}, [{ type: 'increment', path: 'constructor', by: 1 }], {}, [E(0, 'increment.path.proto_polluted')]],
  ['prototype as a nested segment', {}, [{ type: 'merge', path: ['a', 'prototype'], value: { x: 1 } }], {}, [E(0, 'merge.path.proto_polluted')]],
  ['merge value with a __proto__ key', {}, [{ type: 'merge', value: JSON.parse('{"__proto__":{"x":1}}') }], {}, [E(0, 'merge.value.proto_polluted')]],
  ['merge value with 1025 keys', {}, [{ type: 'merge', value: manyKeys(1025) }], {}, [E(0, 'merge.value.too_many_keys', '1024')]],
  ['merge value with 1024 keys is fine', {}, [{ type: 'merge', value: manyKeys(1024) }], manyKeys(1024)],
  ['merge value nested 17 deep', {}, [{ type: 'merge', value: nest(17) }], {}, [E(0, 'merge.value.too_deep', '16')]],
  ['merge value nested 16 deep is fine', {}, [{ type: 'merge', value: nest(16) }], nest(16)],
]

const DECODE_FAILURES = [
  ['unknown op type', [{ type: 'multiply', path: 'a', by: 2 }], 'multiply'],
  ['set without path', [{ type: 'set', value: 1 }], 'path'],
  ['increment by a non-integer', [{ type: 'increment', path: 'a', by: 1.5 }], 'by'],
  ['increment without by', [{ type: 'increment', path: 'a' }], 'by'],
  ['a numeric path', [{ type: 'set', path: 3, value: 1 }], 'path'],
  ['merge path that is neither string nor array', [{ type: 'merge', path: { x: 1 }, value: {} }], 'path'],
  ['merge without value', [{ type: 'merge', path: 'a' }], 'value'],
  ['append without value', [{ type: 'append', path: 'a' }], 'value'],
  ['ops that is not an array', { type: 'set', path: 'a', value: 1 }, 'ops'],
  ['missing ops', undefined, 'ops'],
]

const KINDS = {
  stream: {
    set: (w, key, v) => w.trigger({ function_id: 'stream::set', payload: { stream_name: 'ops', group_id: 'g', item_id: key, data: v } }),
    get: (w, key) => w.trigger({ function_id: 'stream::get', payload: { stream_name: 'ops', group_id: 'g', item_id: key } }),
    update: (w, key, ops) => w.trigger({ function_id: 'stream::update', payload: ops === undefined ? { stream_name: 'ops', group_id: 'g', item_id: key } : { stream_name: 'ops', group_id: 'g', item_id: key, ops } }),
  },
  state: {
    set: (w, key, v) => w.trigger({ function_id: 'state::set', payload: { scope: 'ops', key, value: v } }),
    get: (w, key) => w.trigger({ function_id: 'state::get', payload: { scope: 'ops', key } }),
    update: (w, key, ops) => w.trigger({ function_id: 'state::update', payload: ops === undefined ? { scope: 'ops', key } : { scope: 'ops', key, ops } }),
  },
}

for (const [kind, K] of Object.entries(KINDS)) {
  describe(`update ops via ${kind}::update`, () => {
    let w
    before(async () => {
      w = await makeWorker(GENERATIONS[0], engine.workerUrl)
      await connected(w)
    })

    for (const [name, start, ops, expected, errors = []] of OPS) {
      it(name, async () => {
        const key = uid('op')
        if (start !== M) await K.set(w, key, start)
        const r = await K.update(w, key, ops)
        assert.deepEqual(r.old_value, start === M ? null : start, 'old_value')
        assert.deepEqual(r.new_value, expected, 'new_value')
        if (errors.length === 0) {
          assert.ok(!('errors' in r), `errors must be omitted when there are none, got ${JSON.stringify(r.errors)}`)
        } else {
          assert.ok(Array.isArray(r.errors), `expected errors, got ${JSON.stringify(r)}`)
          assert.equal(r.errors.length, errors.length, JSON.stringify(r.errors))
          errors.forEach((exp, i) => {
            const got = r.errors[i]
            assert.deepEqual(Object.keys(got).sort(), ['code', 'doc_url', 'message', 'op_index'])
            assert.equal(got.op_index, exp.op_index)
            assert.equal(got.code, exp.code)
            assert.equal(got.doc_url, DOC_URL)
            for (const s of exp.mustInclude) assert.ok(got.message.includes(s), `message "${got.message}" should mention ${s}`)
          })
        }
        // The result is always written back.
        const stored = await K.get(w, key)
        assert.deepEqual(stored, expected, 'stored value')
      })
    }

    for (const [name, ops, field] of DECODE_FAILURES) {
      it(`decode failure: ${name} -> deserialization_error, nothing applied`, async () => {
        const key = uid('bad')
        await K.set(w, key, { untouched: true })
        const e = await rejection(K.update(w, key, ops))
        assert.equal(e.code, 'deserialization_error', `${e.code}: ${e.message}`)
        assert.ok(e.message.includes(field), `message should name ${field}: ${e.message}`)
        assert.deepEqual(await K.get(w, key), { untouched: true })
      })
    }

    it('100 concurrent increments of one field end at the exact sum', async () => {
      const key = uid('conc')
      const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => K.update(w, key, [{ type: 'increment', path: 'n', by: i + 1 }])))
      assert.deepEqual(await K.get(w, key), { n: 5050 })
      // Each result saw a distinct previous value: the updates were serialized.
      const olds = rs.map((r) => r.old_value?.n ?? 0).sort((a, b) => a - b)
      assert.equal(new Set(olds).size, 100)
    })
  })
}

describe('exact 64-bit integer arithmetic (raw frames)', () => {
  let c
  before(async () => { c = await rawWorker(engine.workerUrl) })
  after(() => c.close())

  const rawCall = async (id, fn, dataJson) => {
    c.sendRaw(`{"type":"invokefunction","invocation_id":"${id}","function_id":"${fn}","data":${dataJson}}`)
    const m = await c.next((x) => x.invocation_id === id, 5000, `result of ${id}`)
    return { m, raw: c.frames.find((f) => f.msg === m).raw }
  }

  const cases = [
    ['int64 max + 1 becomes uint64', '{"n":9223372036854775807}', '[{"type":"increment","path":"n","by":1}]', '9223372036854775808'],
    ['beyond 2^53 stays exact', '{"n":9007199254740993}', '[{"type":"increment","path":"n","by":2}]', '9007199254740995'],
    ['decrement a missing field by min int64', '{}', '[{"type":"decrement","path":"n","by":-9223372036854775808}]', '9223372036854775808'],
    ['negative exact', '{"n":-9223372036854775807}', '[{"type":"decrement","path":"n","by":1}]', '-9223372036854775808'],
  ]
  for (const [name, start, ops, expectLiteral] of cases) {
    for (const kind of ['stream', 'state']) {
      it(`${kind}: ${name}`, async () => {
        const key = uid('num')
        const addr = kind === 'stream' ? `"stream_name":"nums","group_id":"g","item_id":"${key}"` : `"scope":"nums","key":"${key}"`
        const setFn = `${kind}::set`
        const setData = kind === 'stream' ? `{${addr},"data":${start}}` : `{${addr},"value":${start}}`
        const s = await rawCall(uid('s'), setFn, setData)
        assert.equal(s.m.error, undefined, s.raw)
        const u = await rawCall(uid('u'), `${kind}::update`, `{${addr},"ops":${ops}}`)
        assert.equal(u.m.error, undefined, u.raw)
        assert.ok(!('errors' in u.m.result), u.raw)
        assert.ok(u.raw.includes(`"new_value":{"n":${expectLiteral}}`), `expected n=${expectLiteral} exactly in ${u.raw}`)
      })
    }
  }

  it('uint64 max + 1 does not fit: increment.not_number, value unchanged', async () => {
    const key = uid('num')
    await rawCall(uid('s'), 'stream::set', `{"stream_name":"nums","group_id":"g","item_id":"${key}","data":{"n":18446744073709551615}}`)
    const u = await rawCall(uid('u'), 'stream::update', `{"stream_name":"nums","group_id":"g","item_id":"${key}","ops":[{"type":"increment","path":"n","by":1}]}`)
    assert.equal(u.m.error, undefined, u.raw)
    assert.equal(u.m.result?.errors?.[0]?.code, 'increment.not_number', u.raw)
    assert.ok(u.raw.includes('"new_value":{"n":18446744073709551615}'), u.raw)
  })
})
