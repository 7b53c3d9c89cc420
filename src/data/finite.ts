/**
 * Inputs must be finite numbers: a NaN or an infinity in an example makes every logit NaN, and
 * predictions from it (argmax of NaNs: class 0) look like answers. Used by the loaders' callers
 * (fitDataToModel) and by anything else that takes examples from outside, such as the server.
 */
import { RpOnnxError } from '../errors.js';

/**
 * Throws naming the first non-finite value: its example (of `perExample` values) and position.
 * `where` names the source (a file, a request field) for the message.
 */
export function checkFiniteInputs(values: ArrayLike<number>, perExample: number, where: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    // v - v is 0 for every finite number and NaN for NaN and +-Infinity.
    if (v - v !== 0) {
      const at = perExample > 0 ? `example ${Math.floor(i / perExample)}, value ${i % perExample}` : `value ${i}`;
      throw new RpOnnxError(`${where}: input ${at} is ${v}; inputs must be finite numbers`);
    }
  }
}
