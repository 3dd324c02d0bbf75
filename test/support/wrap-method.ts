// A real component with one method wrapped, for a test to count, hold back or fail that call.

type Method = (...args: never[]) => unknown;
type MethodName<T> = { [K in keyof T]: T[K] extends Method ? K : never }[keyof T];

/**
 * `target` with its method `name` replaced by `wrap(original)`; every other member is its own,
 * methods bound to it (so that its #private fields work).
 */
export function wrapMethod<T extends object, K extends MethodName<T>>(target: T, name: K, wrap: (original: T[K]) => T[K]): T {
  const wrapped = wrap((target[name] as Method).bind(target) as T[K]);
  return new Proxy(target, {
    get(t, prop) {
      if (prop === name) return wrapped;
      const value = Reflect.get(t, prop, t) as unknown;
      return typeof value === 'function' ? (value as Method).bind(t) : value;
    },
  });
}
