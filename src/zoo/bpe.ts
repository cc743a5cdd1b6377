/**
 * Merges for the zoo's byte-level BPE tokenizers, made the way real ones are: BPE
 * training on word counts. The "corpus" is synthetic and seeded: common English words
 * at the top of a Zipf distribution, then pronounceable pseudo-words built from
 * English-like syllables and affixes, each mostly with a leading space (GPT-2
 * pre-tokenization), plus numbers, punctuation runs, whitespace runs and a few
 * accented words. So the first merges are " t", "he", "in", " the" … and decoded
 * text is readable-ish, and every token is reachable by encoding some word.
 */
import type { Rng } from '../util/rng.js';

const COMMON_WORDS = (
  'the of and to a in is that for it as was with be by on not he this are or his from at which but have an had ' +
  'they you were their one all we can her has there been if more when will would who so no she other its may ' +
  'these what them than some him time into only do out could new two first like then now about also made over ' +
  'people my me our most any after such many through where those years way well your each should because very ' +
  'between even how just state world work used life part year being same both under while last long great little ' +
  'own old right big high different small large next early young important few public bad able make know take see ' +
  'come think look want give use find tell ask seem feel try leave call good day man woman child government company ' +
  'number group problem fact hand place case week system program question point home water room mother area money ' +
  'story month lot study book eye job word business issue side kind head house service friend father power hour game ' +
  'line end member law car city community name president team minute idea body information back parent face others ' +
  'level office door health person art war history party result change morning reason research girl guy moment air ' +
  'teacher force education model data training language token print finger network value function between during ' +
  'without again against before around another every never always something nothing however school country family'
).split(' ');

const ONSETS: Array<[string, number]> = [
  ['', 12], ['s', 6], ['t', 6], ['m', 5], ['c', 5], ['p', 5], ['b', 5], ['d', 5], ['r', 5], ['l', 5], ['f', 4], ['h', 4],
  ['n', 4], ['w', 3], ['g', 3], ['v', 2], ['k', 2], ['st', 3], ['tr', 3], ['pr', 3], ['ch', 2], ['sh', 2], ['th', 3],
  ['br', 2], ['cr', 2], ['gr', 2], ['fr', 2], ['pl', 2], ['cl', 2], ['bl', 1], ['fl', 1], ['gl', 1], ['sp', 2], ['sc', 1],
  ['sl', 1], ['sm', 1], ['sn', 1], ['sw', 1], ['dr', 1], ['wh', 1], ['qu', 1], ['ph', 1], ['j', 1], ['y', 1], ['z', 0.5],
  ['str', 1], ['spr', 0.5], ['thr', 0.5], ['sk', 0.5],
];
const NUCLEI: Array<[string, number]> = [
  ['a', 10], ['e', 12], ['i', 9], ['o', 8], ['u', 4], ['ea', 2], ['ee', 1], ['ai', 1], ['ou', 2], ['oo', 1], ['ie', 1],
  ['io', 1], ['oa', 0.5], ['ay', 0.5], ['ow', 0.7], ['y', 0.5],
];
const CODAS: Array<[string, number]> = [
  ['', 14], ['n', 6], ['r', 6], ['s', 4], ['t', 5], ['l', 4], ['m', 3], ['d', 3], ['nt', 2], ['nd', 2], ['st', 2],
  ['ng', 2], ['ll', 1.5], ['ss', 1], ['ct', 1], ['rt', 1], ['rd', 1], ['rn', 0.7], ['rm', 0.7], ['ck', 1], ['x', 0.5],
  ['p', 1], ['b', 0.5], ['g', 1], ['k', 0.7], ['nk', 0.5], ['mp', 0.5], ['ft', 0.3], ['lt', 0.4], ['ld', 0.4], ['sh', 0.6],
  ['th', 0.7], ['ch', 0.5],
];
const PREFIXES: Array<[string, number]> = [
  ['', 40], ['re', 3], ['un', 2], ['in', 2], ['con', 2], ['com', 1.5], ['pro', 1.5], ['dis', 1], ['de', 1.5], ['pre', 1],
  ['ex', 1], ['en', 1], ['sub', 0.5], ['inter', 0.5], ['over', 0.5], ['trans', 0.3],
];
const SUFFIXES: Array<[string, number]> = [
  ['', 30], ['s', 8], ['ing', 5], ['ed', 5], ['er', 4], ['ly', 3], ['tion', 3], ['ation', 1.5], ['ment', 1.5], ['al', 2],
  ['es', 2], ['ers', 1.5], ['ness', 1], ['able', 1], ['ive', 1], ['ous', 1], ['ity', 1], ['ic', 1], ['ist', 0.5],
  ['ize', 0.5], ['ful', 0.5], ['less', 0.5], ['ship', 0.3], ['ure', 0.5], ['ance', 0.5], ['ence', 0.5], ['ings', 0.7],
];
const PUNCT_RUNS: Array<[string, number]> = [
  ['.', 9000], [',', 9000], [' (', 1500], [').', 800], ['),', 700], [' "', 1500], ['."', 500], [',"', 400], [' -', 800],
  ['...', 500], ['--', 300], [' –', 200], [':', 1500], [';', 900], ['!', 900], ['?', 900], ['?"', 200], [' [', 300],
  ['])', 100], ['://', 300], ['/', 800], [' /', 200], [' *', 300], ['**', 200], [' =', 400], ['==', 150], [' +', 200],
  [' <', 200], ['>', 300], [' {', 200], ['});', 100], ['();', 150], ['()', 300], [' &', 300], [' %', 150], ['%', 300],
  [' $', 300], [' #', 150], [' @', 100], ['_', 300], ['__', 100], [' |', 150], ['\'', 600], [' \'', 300], ['"', 800],
];
const ACCENTED: Array<[string, number]> = [
  [' café', 60], [' résumé', 30], [' naïve', 20], [' über', 30], [' señor', 20], [' façade', 15], [' élan', 10],
  ['’s', 300], [' —', 200], [' “', 200], ['”', 200], ['…', 80], [' €', 40], [' £', 30], ['°', 40], [' ×', 20],
  [' déjà', 10], [' Zürich', 15], [' São', 15], [' für', 20], [' être', 10], [' año', 15], [' straße', 8],
];
const CONTRACTIONS: Array<[string, number]> = [
  ["'s", 3000], ["'t", 1500], ["'re", 600], ["'ve", 500], ["'m", 500], ["'ll", 500], ["'d", 400],
];

function weighted(rng: Rng, items: Array<[string, number]>, total: number): string {
  let x = rng.next() * total;
  for (const [s, w] of items) {
    x -= w;
    if (x < 0) return s;
  }
  return items[items.length - 1][0];
}
const sum = (items: Array<[string, number]>) => items.reduce((a, [, w]) => a + w, 0);

/** A pronounceable pseudo-word: prefix + 1–3 syllables + suffix. */
function pseudoWord(rng: Rng): string {
  const [tO, tN, tC, tP, tS] = [sum(ONSETS), sum(NUCLEI), sum(CODAS), sum(PREFIXES), sum(SUFFIXES)];
  const syllables = 1 + Math.floor(rng.next() ** 1.5 * 3);
  let w = weighted(rng, PREFIXES, tP);
  for (let i = 0; i < syllables; i++) w += weighted(rng, ONSETS, tO) + weighted(rng, NUCLEI, tN) + weighted(rng, CODAS, tC);
  w += weighted(rng, SUFFIXES, tS);
  return w;
}

const capitalise = (w: string) => w.charAt(0).toUpperCase() + w.slice(1);

/** Pre-tokenized word counts (plain text pieces, as the GPT-2 regex would split them). */
export function syntheticWordCounts(rng: Rng, lexiconSize: number): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (w: string, c: number) => {
    const n = Math.round(c);
    if (n > 0) counts.set(w, (counts.get(w) ?? 0) + n);
  };
  const lexicon: string[] = [];
  const seen = new Set<string>();
  for (const w of COMMON_WORDS) {
    if (seen.has(w)) continue;
    seen.add(w);
    lexicon.push(w);
  }
  let guard = 0;
  while (lexicon.length < lexiconSize && guard++ < lexiconSize * 50) {
    const w = pseudoWord(rng);
    if (w.length < 2 || w.length > 16 || seen.has(w)) continue;
    seen.add(w);
    lexicon.push(w);
  }
  lexicon.forEach((w, r) => {
    const f = 2e7 / (r + 8) ** 1.05;
    add(` ${w}`, f * 0.8);
    if (r < 8000) add(w, f * 0.12);
    if (r < 4000) add(` ${capitalise(w)}`, f * 0.06);
    if (r < 1000) add(capitalise(w), f * 0.02);
  });
  for (let n = 0; n < 1000; n++) {
    const f = 3e5 / (n + 2) ** 1.1;
    add(` ${n}`, f);
    add(String(n), f * 0.4);
  }
  for (let y = 1900; y <= 2030; y++) add(` ${y}`, 200);
  for (const [p, c] of [...PUNCT_RUNS, ...ACCENTED, ...CONTRACTIONS]) add(p, c * 40);
  for (let k = 2; k <= 16; k++) add(' '.repeat(k), 4e4 / k ** 1.5);
  for (let k = 1; k <= 4; k++) add('\n'.repeat(k), 3e5 / k ** 2);
  for (let k = 1; k <= 4; k++) add('\t'.repeat(k), 5e4 / k ** 2);
  for (let k = 1; k <= 12; k++) add(`\n${' '.repeat(k)}`, 3e4 / k);
  return counts;
}

/** (a, b) token pairs ↔ dense pair ids, by open addressing. */
class PairTable {
  a: number[] = [];
  b: number[] = [];
  private slots = new Int32Array(1 << 16);
  private mask = (1 << 16) - 1;

  private hash(a: number, b: number): number {
    return (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b)) & this.mask;
  }

  /** The id of (a, b), created when new. */
  id(a: number, b: number): number {
    let h = this.hash(a, b);
    for (;;) {
      const s = this.slots[h];
      if (s === 0) break;
      if (this.a[s - 1] === a && this.b[s - 1] === b) return s - 1;
      h = (h + 1) & this.mask;
    }
    const id = this.a.length;
    this.a.push(a);
    this.b.push(b);
    this.slots[h] = id + 1;
    if (this.a.length * 2 > this.slots.length) this.grow();
    return id;
  }

  private grow(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    this.mask = this.slots.length - 1;
    for (let id = 0; id < this.a.length; id++) {
      let h = this.hash(this.a[id], this.b[id]);
      while (this.slots[h] !== 0) h = (h + 1) & this.mask;
      this.slots[h] = id + 1;
    }
  }
}

/**
 * Trains `count` BPE merges on byte-level words (strings of byte symbols) with counts.
 * Ties go to the pair of older tokens, so the result is deterministic.
 */
export function trainBpe(words: Map<string, number>, count: number, byteToChar: readonly string[]): Array<[string, string]> {
  const tokens: string[] = [...byteToChar];
  const idOf = new Map<string, number>(tokens.map((t, i) => [t, i]));
  const seqs: number[][] = [];
  const freq: number[] = [];
  for (const [w, c] of words) {
    const s = Array.from(w, (ch) => idOf.get(ch)!);
    if (s.length < 2) continue;
    seqs.push(s);
    freq.push(c);
  }
  const pairs = new PairTable();
  const pairCount: number[] = [];
  const pairWords: number[][] = [];
  // Pairs whose count changed during the current merge, with their count before it.
  let stamp = 1;
  const touchedAt: number[] = [];
  const before: number[] = [];
  const touched: number[] = [];
  /** Adds (sign 1) or removes (-1) a word's pairs. */
  const addPairs = (wi: number, sign: number, track: boolean) => {
    const s = seqs[wi];
    const f = sign * freq[wi];
    for (let i = 0; i + 1 < s.length; i++) {
      const p = pairs.id(s[i], s[i + 1]);
      if (p === pairCount.length) {
        pairCount.push(0);
        pairWords.push([]);
        touchedAt.push(0);
        before.push(0);
      }
      if (track && touchedAt[p] !== stamp) {
        touchedAt[p] = stamp;
        before[p] = pairCount[p];
        touched.push(p);
      }
      pairCount[p] += f;
      if (sign > 0) {
        const list = pairWords[p];
        if (list[list.length - 1] !== wi) list.push(wi);
      }
    }
  };
  for (let wi = 0; wi < seqs.length; wi++) addPairs(wi, 1, false);

  // Max-heap of (count, pair) with lazy invalidation; ties → the pair of older tokens.
  const hc: number[] = [];
  const hp: number[] = [];
  const better = (i: number, j: number) => {
    if (hc[i] !== hc[j]) return hc[i] > hc[j];
    const pi = hp[i];
    const pj = hp[j];
    return pairs.a[pi] < pairs.a[pj] || (pairs.a[pi] === pairs.a[pj] && pairs.b[pi] < pairs.b[pj]);
  };
  const swap = (i: number, j: number) => {
    const c = hc[i];
    hc[i] = hc[j];
    hc[j] = c;
    const k = hp[i];
    hp[i] = hp[j];
    hp[j] = k;
  };
  const push = (c: number, p: number) => {
    hc.push(c);
    hp.push(p);
    let i = hc.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!better(i, up)) break;
      swap(i, up);
      i = up;
    }
  };
  const pop = (): number => {
    const top = hp[0];
    const lc = hc.pop()!;
    const lp = hp.pop()!;
    if (hc.length > 0) {
      hc[0] = lc;
      hp[0] = lp;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < hc.length && better(l, m)) m = l;
        if (r < hc.length && better(r, m)) m = r;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
    }
    return top;
  };
  for (let p = 0; p < pairCount.length; p++) push(pairCount[p], p);

  const merges: Array<[string, string]> = [];
  while (merges.length < count && hc.length > 0) {
    const c = hc[0];
    const p = pop();
    const cur = pairCount[p];
    if (cur !== c) {
      if (cur > 0) push(cur, p);
      continue;
    }
    if (c <= 0) break;
    const a = pairs.a[p];
    const b = pairs.b[p];
    const t = tokens[a] + tokens[b];
    if (idOf.has(t)) {
      // Same string reachable by another split: count it as done.
      pairCount[p] = 0;
      continue;
    }
    const id = tokens.length;
    tokens.push(t);
    idOf.set(t, id);
    merges.push([tokens[a], tokens[b]]);
    stamp++;
    touched.length = 0;
    for (const wi of pairWords[p]) {
      const s = seqs[wi];
      let has = false;
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) has = true;
      if (!has) continue;
      addPairs(wi, -1, true);
      let n = 0;
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          s[n++] = id;
          i++;
        } else s[n++] = s[i];
      }
      s.length = n;
      addPairs(wi, 1, true);
    }
    pairWords[p] = [];
    pairCount[p] = 0;
    // Only increases need a new heap entry; a decreased count is fixed up when popped.
    for (const q of touched) if (q !== p && pairCount[q] > before[q]) push(pairCount[q], q);
  }
  return merges;
}
