import { test } from "node:test";
import * as assert from "node:assert/strict";
import { FeedbackTracker } from "../../src/logic/feedback";

function tracker() {
  const sent: [string, string][] = [];
  return { t: new FeedbackTracker((e, id) => sent.push([e, id])), sent };
}

test("accepting sends accepted once and forgets the suggestion", () => {
  const { t, sent } = tracker();
  t.show("u", "c1", "return a * b", "def mul(a, b):\n    ");
  t.accept("c1");
  assert.deepEqual(sent, [["accepted", "c1"]]);
  assert.equal(t.current("u"), undefined);
  t.show("u", "c2", "x", "other");
  assert.deepEqual(sent, [["accepted", "c1"]], "an accepted suggestion is never rejected later");
});

test("typing the suggestion ahead is not a rejection", () => {
  const { t, sent } = tracker();
  t.show("u", "c1", "return a * b", "    ");
  t.show("u", "c2", "urn a * b", "    ret");
  t.dismiss("u", "    return a * b");
  assert.deepEqual(sent, []);
});

test("typing something else rejects the shown suggestion", () => {
  const { t, sent } = tracker();
  t.show("u", "c1", "return a * b", "    ");
  t.show("u", "c2", "int(a)", "    print(");
  assert.deepEqual(sent, [["rejected", "c1"]]);
  t.dismiss("u", "    print(x)");
  assert.deepEqual(sent, [["rejected", "c1"], ["rejected", "c2"]]);
});

test("closing the document rejects; documents are tracked separately", () => {
  const { t, sent } = tracker();
  t.show("a", "c1", "foo", "x = ");
  t.show("b", "c2", "bar", "y = ");
  t.dismiss("a");
  assert.deepEqual(sent, [["rejected", "c1"]]);
  assert.equal(t.current("b")?.id, "c2");
});
