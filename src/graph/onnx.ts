/**
 * The ONNX protobuf schema as generated static code (src/graph/proto), re-exported with the
 * names the rest of the project uses. Only src/graph touches these classes directly.
 */
import { onnx } from './proto/onnx.js';

export { onnx };
export type ModelProto = onnx.ModelProto;
export type GraphProto = onnx.GraphProto;
export type NodeProto = onnx.NodeProto;
export type TensorProto = onnx.TensorProto;
export type AttributeProto = onnx.AttributeProto;
export type ValueInfoProto = onnx.ValueInfoProto;
export type TypeProto = onnx.TypeProto;
export const DataType = onnx.TensorProto.DataType;
export const AttributeType = onnx.AttributeProto.AttributeType;
