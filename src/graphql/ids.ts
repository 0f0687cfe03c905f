// Global ids: `base64(Type:uuid)`. A malformed id, or one of another type, reads as not found.
import { decodeGlobalID } from '@pothos/plugin-relay';
import { NotFoundError } from '../errors.js';
import { isUuid } from '../org/units.js';

export function decodeId(globalId: string, typename: string): string {
  try {
    const { typename: actual, id } = decodeGlobalID(globalId);
    if (actual === typename && isUuid(id)) return id;
  } catch {
    /* fall through: not a global id */
  }
  throw new NotFoundError(typename, globalId);
}

/** Like decodeId, but null instead of an error (for nullable query fields). */
export function tryDecodeId(globalId: string, typename: string): string | null {
  try {
    return decodeId(globalId, typename);
  } catch {
    return null;
  }
}
