// What a read of a missing object throws, on either kind of storage.
export class ObjectNotFoundError extends Error {
  readonly code = 'OBJECT_NOT_FOUND';
  readonly uri: string;
  constructor(uri: string) {
    super(`not found: ${uri}`);
    this.uri = uri;
    this.name = 'ObjectNotFoundError';
  }
}
