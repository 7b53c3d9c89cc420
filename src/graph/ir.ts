/**
 * The Graph IR: a mutable graph over the ONNX protobuf. Nodes name their input and output
 * values; the graph answers who produces and who consumes each value, orders nodes
 * topologically, removes dead code and hands out unique names. Passes edit this IR, never
 * protobuf objects; `Model.toProto()` turns it back into a ModelProto.
 *
 * Lossless by construction: attributes, tensors and every field the IR does not model are kept
 * as their protobuf objects and written back unchanged.
 *
 * Edges keep themselves consistent (as onnx-graphsurgeon's IR does): a node's inputs, outputs,
 * name and attributes and a graph's node list are observed, so any edit, through a mutator
 * (`addNode`, `replaceAllUses`, ...) or directly (`node.inputs[1] = v`, `node.outputs = [...]`,
 * `graph.nodes.push(n)`), brings the producer/consumer index and the name table up to date.
 * Appending a node updates them in place; any other edit marks them stale, and the next query
 * rebuilds them. (Subgraph bodies inside attributes are protobuf objects: replace the
 * attribute with `setAttr` after editing one in place.)
 */
import { onnx, type AttributeProto, type ModelProto, type NodeProto, type TensorProto, type TypeProto } from './onnx.js';
import { toNumber, dtypeCode, type DType, dtypeName } from './tensor.js';
import { RpOnnxError } from '../errors.js';

const AT = onnx.AttributeProto.AttributeType;

/** A dimension: a number, a symbolic name, or null when unknown. */
export type Dim = number | string | null;
export interface TensorType {
  dtype: DType;
  /** null when the rank is unknown. */
  shape: Dim[] | null;
}

export type AttrValue =
  | number | string | number[] | string[] | TensorProto | onnx.GraphProto;

/**
 * The derived tables of a graph (producer/consumer index, names in use), dropped on every edit
 * that could change them. Each node that fed the current tables keeps a link to them (`feeds`),
 * so editing the node drops them too.
 */
class Derived {
  index: GraphIndex | null = null;
  names: Set<string> | null = null;
  stale(): void {
    this.index = null;
    this.names = null;
  }
}

/** Per node: the derived tables of the graphs it was indexed into. */
const feeds = new WeakMap<Node, Set<Derived>>();

function edited(node: Node): void {
  const tables = feeds.get(node);
  if (tables) for (const t of tables) t.stale();
}

/**
 * `items` behind a proxy that calls `onChange` after every write: index assignment, length,
 * push/splice/sort/... (reads go straight to the array).
 */
function observed<T>(items: T[], onChange: () => void): T[] {
  return new Proxy(items, {
    set(target, key, value) {
      const ok = Reflect.set(target, key, value);
      onChange();
      return ok;
    },
    deleteProperty(target, key) {
      const ok = Reflect.deleteProperty(target, key);
      onChange();
      return ok;
    },
  });
}

export class Node {
  opType: string;
  domain: string;
  /** Remaining NodeProto fields (doc_string, overload, metadata_props, ...) kept verbatim. */
  readonly extra: Partial<NodeProto>;
  private nodeName: string;
  private ins: string[];
  private outs: string[];
  private attrs: AttributeProto[];

  constructor(init: {
    opType: string; inputs: string[]; outputs: string[]; name?: string; domain?: string;
    attributes?: AttributeProto[]; extra?: Partial<NodeProto>;
  }) {
    this.opType = init.opType;
    this.domain = init.domain ?? '';
    this.nodeName = init.name ?? '';
    this.ins = this.observe(init.inputs);
    this.outs = this.observe(init.outputs);
    this.attrs = this.observe(init.attributes ?? []);
    this.extra = init.extra ?? {};
  }

  /** `items` observed for edits, which drop the tables of the graphs this node feeds. */
  private observe<T>(items: T[]): T[] {
    edited(this);
    return observed(items, () => edited(this));
  }

  get name(): string {
    return this.nodeName;
  }
  set name(v: string) {
    this.nodeName = v;
    edited(this);
  }
  /** Input value names ('' for an omitted optional input); edits update the graph's index. */
  get inputs(): string[] {
    return this.ins;
  }
  set inputs(v: string[]) {
    this.ins = this.observe(v);
  }
  /** Output value names; edits update the graph's index. */
  get outputs(): string[] {
    return this.outs;
  }
  set outputs(v: string[]) {
    this.outs = this.observe(v);
  }
  /** Attributes as protobuf objects (subgraph bodies feed the index through `implicitInputs`). */
  get attributes(): AttributeProto[] {
    return this.attrs;
  }
  set attributes(v: AttributeProto[]) {
    this.attrs = this.observe(v);
  }

  static fromProto(p: NodeProto): Node {
    const { input, output, name, opType, domain, attribute, ...extra } = p;
    keepEmptyPresence(p, extra, ['name', 'domain']);
    return new Node({
      opType, domain, name, inputs: [...input], outputs: [...output], attributes: [...attribute] as AttributeProto[],
      extra: extra as Partial<NodeProto>,
    });
  }

  toProto(): NodeProto {
    // Empty name/domain are left unset, as exporters write them (proto2 field presence),
    // unless the file set them explicitly (then `extra` holds the empty string).
    const p = onnx.NodeProto.create({
      ...(this.extra as object),
      input: [...this.inputs], output: [...this.outputs], opType: this.opType, attribute: [...this.attributes],
    });
    if (this.name) p.name = this.name;
    if (this.domain) p.domain = this.domain;
    return p;
  }

  /** True for ops of the default ONNX domain ('' or 'ai.onnx'). */
  get isStandard(): boolean {
    return this.domain === '' || this.domain === 'ai.onnx';
  }

  attr(name: string): AttributeProto | undefined {
    return this.attributes.find((a) => a.name === name);
  }
  hasAttr(name: string): boolean {
    return this.attr(name) !== undefined;
  }
  getInt(name: string, fallback: number): number;
  getInt(name: string): number | undefined;
  getInt(name: string, fallback?: number): number | undefined {
    const a = this.attr(name);
    return a ? toNumber(a.i) : fallback;
  }
  getFloat(name: string, fallback: number): number;
  getFloat(name: string): number | undefined;
  getFloat(name: string, fallback?: number): number | undefined {
    const a = this.attr(name);
    return a ? a.f : fallback;
  }
  getInts(name: string, fallback: number[]): number[];
  getInts(name: string): number[] | undefined;
  getInts(name: string, fallback?: number[]): number[] | undefined {
    const a = this.attr(name);
    return a ? a.ints.map(toNumber) : fallback;
  }
  getFloats(name: string): number[] | undefined {
    const a = this.attr(name);
    return a ? [...a.floats] : undefined;
  }
  getString(name: string, fallback: string): string;
  getString(name: string): string | undefined;
  getString(name: string, fallback?: string): string | undefined {
    const a = this.attr(name);
    return a ? new TextDecoder().decode(a.s) : fallback;
  }
  getTensor(name: string): TensorProto | undefined {
    const a = this.attr(name);
    return (a?.t as TensorProto | null | undefined) ?? undefined;
  }

  /** Sets (or replaces) an attribute; the type is inferred from the JS value. */
  setAttr(name: string, value: AttrValue, kind?: 'int' | 'float' | 'ints' | 'floats'): this {
    const a = makeAttribute(name, value, kind);
    const i = this.attributes.findIndex((x) => x.name === name);
    if (i >= 0) this.attributes[i] = a;
    else this.attributes.push(a);
    return this;
  }
  removeAttr(name: string): this {
    this.attributes = this.attributes.filter((a) => a.name !== name);
    return this;
  }

  /** Subgraphs held in attributes (If/Loop/Scan bodies). */
  subgraphs(): onnx.GraphProto[] {
    const out: onnx.GraphProto[] = [];
    for (const a of this.attributes) {
      if (a.g) out.push(a.g as onnx.GraphProto);
      for (const g of a.graphs) out.push(g as onnx.GraphProto);
    }
    return out;
  }
}

/**
 * Builds an AttributeProto. Integers become INT unless `kind` says 'float'; arrays of numbers
 * become INTS when all are integers unless `kind` says 'floats'.
 */
export function makeAttribute(name: string, value: AttrValue, kind?: 'int' | 'float' | 'ints' | 'floats'): AttributeProto {
  if (typeof value === 'number') {
    const asFloat = kind === 'float' || (kind === undefined && !Number.isInteger(value));
    return onnx.AttributeProto.create(asFloat ? { name, type: AT.FLOAT, f: value } : { name, type: AT.INT, i: value });
  }
  if (typeof value === 'string') {
    return onnx.AttributeProto.create({ name, type: AT.STRING, s: new TextEncoder().encode(value) });
  }
  if (Array.isArray(value)) {
    if (value.length > 0 && typeof value[0] === 'string') {
      return onnx.AttributeProto.create({ name, type: AT.STRINGS, strings: (value as string[]).map((s) => new TextEncoder().encode(s)) });
    }
    const nums = value as number[];
    const asFloats = kind === 'floats' || (kind === undefined && nums.some((v) => !Number.isInteger(v)));
    return onnx.AttributeProto.create(asFloats ? { name, type: AT.FLOATS, floats: nums } : { name, type: AT.INTS, ints: nums });
  }
  if (value instanceof onnx.TensorProto) return onnx.AttributeProto.create({ name, type: AT.TENSOR, t: value });
  return onnx.AttributeProto.create({ name, type: AT.GRAPH, g: value as onnx.GraphProto });
}

/** A graph input or output, or an annotated intermediate value. */
export interface ValueInfo {
  name: string;
  type: TypeProto | null;
  /** doc_string, metadata_props, kept verbatim. */
  extra?: Partial<onnx.ValueInfoProto>;
}

export function tensorTypeOf(type: TypeProto | null | undefined): TensorType | null {
  const tt = type?.tensorType;
  if (!tt) return null;
  const shape = tt.shape
    ? (tt.shape.dim ?? []).map((d): Dim => (d.dimValue !== undefined && d.dimValue !== null ? toNumber(d.dimValue) : d.dimParam ? d.dimParam : null))
    : null;
  return { dtype: dtypeName(tt.elemType ?? 0), shape };
}

export function makeTensorTypeProto(t: TensorType): TypeProto {
  return onnx.TypeProto.fromObject({
    tensorType: {
      elemType: dtypeCode(t.dtype),
      shape: t.shape === null ? undefined : {
        dim: t.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
      },
    },
  });
}

interface GraphIndex {
  producer: Map<string, Node>;
  consumers: Map<string, Node[]>;
}

export class Graph {
  name: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Initializers by name, in file order. */
  initializers: Map<string, TensorProto>;
  /** value_info entries by name. */
  valueInfo: Map<string, ValueInfo>;
  /** Other GraphProto fields (sparse_initializer, doc_string, quantization_annotation, ...). */
  readonly extra: Partial<onnx.GraphProto>;
  /** The node array and the observed view of it that `nodes` hands out. */
  private nodeArray: Node[] = [];
  private nodeList: Node[];
  /** Producer/consumer index and names in use, kept up to date by every edit (see the top). */
  private readonly derived = new Derived();

  constructor(init?: Partial<Pick<Graph, 'name' | 'nodes' | 'inputs' | 'outputs' | 'initializers' | 'valueInfo'>> & { extra?: Partial<onnx.GraphProto> }) {
    this.name = init?.name ?? 'graph';
    this.nodeList = this.observe(init?.nodes ?? []);
    this.inputs = init?.inputs ?? [];
    this.outputs = init?.outputs ?? [];
    this.initializers = init?.initializers ?? new Map();
    this.valueInfo = init?.valueInfo ?? new Map();
    this.extra = init?.extra ?? {};
  }

  /** The nodes in order; edits (push, splice, assignment) update the index. */
  get nodes(): Node[] {
    return this.nodeList;
  }
  set nodes(v: Node[]) {
    this.nodeList = this.observe(v);
    this.derived.stale();
  }
  private observe(nodes: Node[]): Node[] {
    this.nodeArray = nodes;
    return observed(nodes, () => this.derived.stale());
  }
  static fromProto(g: onnx.GraphProto): Graph {
    const { node, name, input, output, initializer, valueInfo, ...extra } = g;
    keepEmptyPresence(g, extra, ['name']);
    const vi = (v: onnx.ValueInfoProto): ValueInfo => {
      const { name: n, type, ...rest } = v;
      keepEmptyPresence(v, rest, ['name']);
      return { name: n, type: (type as TypeProto | null) ?? null, extra: rest as Partial<onnx.ValueInfoProto> };
    };
    return new Graph({
      name,
      nodes: node.map((n) => Node.fromProto(n as NodeProto)),
      inputs: input.map((v) => vi(v as onnx.ValueInfoProto)),
      outputs: output.map((v) => vi(v as onnx.ValueInfoProto)),
      initializers: new Map(initializer.map((t) => [t.name ?? '', t as TensorProto])),
      valueInfo: new Map(valueInfo.map((v) => [v.name ?? '', vi(v as onnx.ValueInfoProto)])),
      extra: extra as Partial<onnx.GraphProto>,
    });
  }

  toProto(): onnx.GraphProto {
    // An empty name is written only when the file had it (then `extra` holds it).
    const vi = (v: ValueInfo) => {
      const p = onnx.ValueInfoProto.create({ ...(v.extra as object), type: v.type ?? undefined });
      if (v.name) p.name = v.name;
      return p;
    };
    const p = onnx.GraphProto.create({
      ...(this.extra as object),
      node: this.nodes.map((n) => n.toProto()),
      input: this.inputs.map(vi),
      output: this.outputs.map(vi),
      initializer: [...this.initializers.values()],
      valueInfo: [...this.valueInfo.values()].map(vi),
    });
    if (this.name) p.name = this.name;
    return p;
  }

  private index(): GraphIndex {
    const d = this.derived;
    if (d.index) return d.index;
    d.index = { producer: new Map(), consumers: new Map() };
    for (const n of this.nodes) indexNode(d, n);
    return d.index;
  }

  /** Names of nodes and node values, plus names handed out by `uniqueName` since the last rebuild. */
  private nodeNames(): Set<string> {
    const d = this.derived;
    if (d.names) return d.names;
    d.names = new Set();
    for (const n of this.nodes) nameNode(d, n);
    return d.names;
  }

  producer(value: string): Node | undefined {
    return this.index().producer.get(value);
  }
  consumers(value: string): Node[] {
    return this.index().consumers.get(value) ?? [];
  }
  isInitializer(value: string): boolean {
    return this.initializers.has(value);
  }
  /** Graph inputs that are not initializers (IR < 4 lists initializers as inputs too). */
  realInputs(): ValueInfo[] {
    return this.inputs.filter((i) => !this.initializers.has(i.name));
  }
  isGraphOutput(value: string): boolean {
    return this.outputs.some((o) => o.name === value);
  }

  /** Static type of a value from inputs, outputs, value_info or initializers. */
  typeOf(value: string): TensorType | null {
    const init = this.initializers.get(value);
    if (init) return { dtype: dtypeName(init.dataType), shape: init.dims.map(toNumber) };
    const info = this.inputs.find((v) => v.name === value) ?? this.outputs.find((v) => v.name === value) ?? this.valueInfo.get(value);
    return tensorTypeOf(info?.type);
  }
  setType(value: string, type: TensorType): void {
    const proto = makeTensorTypeProto(type);
    const io = this.inputs.find((v) => v.name === value) ?? this.outputs.find((v) => v.name === value);
    if (io) io.type = proto;
    else this.valueInfo.set(value, { name: value, type: proto });
  }

  /** Appends `node` (or inserts it at position `at`), naming it when it has no name. */
  addNode(node: Node, at?: number): Node {
    if (!node.name) node.name = this.uniqueName(node.opType);
    if (at !== undefined && at < this.nodeArray.length) {
      this.nodes.splice(at, 0, node);
      return node;
    }
    // Appending keeps every table valid: the new node only adds to them.
    this.nodeArray.push(node);
    const d = this.derived;
    if (d.index) indexNode(d, node);
    if (d.names) nameNode(d, node);
    return node;
  }
  removeNode(node: Node): void {
    const i = this.nodes.indexOf(node);
    if (i >= 0) this.nodes.splice(i, 1);
  }
  addInitializer(t: TensorProto): string {
    this.initializers.set(t.name, t);
    return t.name;
  }

  /** Makes every consumer (and graph output) of `from` read `to` instead. */
  replaceAllUses(from: string, to: string, except?: Node): void {
    for (const n of this.nodes) {
      if (n === except || !n.inputs.includes(from)) continue;
      n.inputs = n.inputs.map((i) => (i === from ? to : i));
    }
    for (const o of this.outputs) if (o.name === from) o.name = to;
  }

  /** A name not used by any value or node in the graph, derived from `base`. */
  uniqueName(base: string): string {
    const names = this.nodeNames();
    const taken = (v: string) => names.has(v) || this.initializers.has(v) || this.valueInfo.has(v)
      || this.inputs.some((i) => i.name === v) || this.outputs.some((o) => o.name === v);
    let name = base;
    for (let k = 1; taken(name); k++) name = `${base}_${k}`;
    names.add(name);
    return name;
  }

  /**
   * Orders nodes so every node comes after the producers of its inputs (stable: keeps the
   * original order where it is already valid). Throws on a cycle.
   */
  toposort(): void {
    const available = new Set<string>(['']);
    for (const v of this.inputs) available.add(v.name);
    for (const k of this.initializers.keys()) available.add(k);
    const produced = new Set<string>();
    for (const n of this.nodes) for (const o of n.outputs) produced.add(o);
    const pending = [...this.nodes];
    const ordered: Node[] = [];
    // Inputs coming from outside the graph (outer scope) count as available.
    const ready = (n: Node) => [...n.inputs, ...implicitInputs(n)].every((i) => available.has(i) || !produced.has(i));
    while (pending.length > 0) {
      let progressed = false;
      for (let i = 0; i < pending.length; ) {
        const n = pending[i]!;
        if (ready(n)) {
          ordered.push(n);
          for (const o of n.outputs) available.add(o);
          pending.splice(i, 1);
          progressed = true;
        } else i++;
      }
      if (!progressed) throw new RpOnnxError(`graph '${this.name}' has a cycle through node '${pending[0]!.name}'`);
    }
    this.nodes = ordered;
  }

  /** Removes nodes and initializers that no graph output depends on. */
  removeDeadCode(): void {
    const live = new Set<string>(this.outputs.map((o) => o.name));
    const keep: Node[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i]!;
      if (n.outputs.some((o) => live.has(o))) {
        keep.push(n);
        for (const x of [...n.inputs, ...implicitInputs(n)]) live.add(x);
      }
    }
    this.nodes = keep.reverse();
    for (const k of [...this.initializers.keys()]) {
      if (!live.has(k)) {
        this.initializers.delete(k);
      }
    }
    this.inputs = this.inputs.filter((v) => live.has(v.name) || !this.initializers.has(v.name));
    for (const k of [...this.valueInfo.keys()]) if (!live.has(k)) this.valueInfo.delete(k);
  }
}

/** Adds one node to an index being built (in node order) or kept up to date by an append. */
function indexNode(d: Derived, n: Node): void {
  const { producer, consumers } = d.index!;
  for (const o of n.outputs) if (o) producer.set(o, n);
  for (const i of new Set([...n.inputs, ...implicitInputs(n)])) {
    if (!i) continue;
    const list = consumers.get(i);
    if (list) list.push(n);
    else consumers.set(i, [n]);
  }
  watch(n, d);
}

function nameNode(d: Derived, n: Node): void {
  const names = d.names!;
  if (n.name) names.add(n.name);
  for (const v of n.inputs) names.add(v);
  for (const v of n.outputs) names.add(v);
  watch(n, d);
}

function watch(n: Node, d: Derived): void {
  const tables = feeds.get(n);
  if (tables) tables.add(d);
  else feeds.set(n, new Set([d]));
}

/**
 * proto2 field presence: a string field the file set explicitly to '' is remembered in the
 * object's `extra` (toProto writes non-empty values over it), so re-saving is lossless.
 */
function keepEmptyPresence(source: object, extra: object, fields: string[]): void {
  for (const f of fields) {
    if (Object.prototype.hasOwnProperty.call(source, f) && (source as Record<string, unknown>)[f] === '') {
      (extra as Record<string, unknown>)[f] = '';
    }
  }
}

/** Outer-scope values a node's subgraphs read (If/Loop/Scan bodies capture them implicitly). */
export function implicitInputs(node: Node): string[] {
  const out = new Set<string>();
  for (const g of node.subgraphs()) for (const v of freeValues(g)) out.add(v);
  return [...out];
}

/** Values a (sub)graph reads without defining them, including through nested subgraphs. */
function freeValues(g: onnx.IGraphProto): Set<string> {
  const defined = new Set<string>(['']);
  for (const i of g.input ?? []) defined.add(i.name ?? '');
  for (const t of g.initializer ?? []) defined.add(t.name ?? '');
  for (const n of g.node ?? []) for (const o of n.output ?? []) defined.add(o);
  const free = new Set<string>();
  for (const n of g.node ?? []) {
    for (const i of n.input ?? []) if (!defined.has(i)) free.add(i);
    for (const a of n.attribute ?? []) {
      for (const sg of [a.g, ...(a.graphs ?? [])]) {
        if (sg) for (const v of freeValues(sg)) if (!defined.has(v)) free.add(v);
      }
    }
  }
  return free;
}

/** A model: the graph plus the ModelProto fields around it (opsets, metadata, functions...). */
export class Model {
  graph: Graph;
  /** The ModelProto without its graph; every field is written back unchanged. */
  readonly proto: ModelProto;

  constructor(proto: ModelProto, graph: Graph) {
    this.proto = proto;
    this.graph = graph;
  }

  static fromProto(p: ModelProto): Model {
    if (!p.graph) throw new RpOnnxError('the model has no graph');
    const shell = onnx.ModelProto.create({ ...p, graph: undefined });
    return new Model(shell, Graph.fromProto(p.graph as onnx.GraphProto));
  }

  toProto(): ModelProto {
    return onnx.ModelProto.create({ ...this.proto, graph: this.graph.toProto() });
  }

  get irVersion(): number {
    return toNumber(this.proto.irVersion);
  }
  /** Opset version per domain ('' is the default ONNX domain). */
  get opsets(): Map<string, number> {
    return new Map(this.proto.opsetImport.map((o) => [o.domain === 'ai.onnx' ? '' : (o.domain ?? ''), toNumber(o.version)]));
  }
  opset(domain = ''): number {
    return this.opsets.get(domain) ?? 0;
  }
  setOpset(domain: string, version: number): void {
    const existing = this.proto.opsetImport.find((o) => (o.domain ?? '') === domain);
    if (existing) existing.version = version;
    else this.proto.opsetImport.push(onnx.OperatorSetIdProto.create({ domain, version }));
  }

  getMetadata(key: string): string | undefined {
    return this.proto.metadataProps.find((e) => e.key === key)?.value ?? undefined;
  }
  metadata(): Map<string, string> {
    return new Map(this.proto.metadataProps.map((e) => [e.key ?? '', e.value ?? '']));
  }
  setMetadata(key: string, value: string): void {
    const e = this.proto.metadataProps.find((x) => x.key === key);
    if (e) e.value = value;
    else this.proto.metadataProps.push(onnx.StringStringEntryProto.create({ key, value }));
  }
  deleteMetadata(key: string): void {
    this.proto.metadataProps = this.proto.metadataProps.filter((e) => e.key !== key);
  }

  /** A deep copy, so a pass can rewrite without touching the caller's model. */
  clone(): Model {
    const bytes = onnx.ModelProto.encode(this.toProto()).finish();
    return Model.fromProto(onnx.ModelProto.decode(bytes));
  }
}
