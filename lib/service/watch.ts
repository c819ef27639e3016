/**
 * Telling when a config file may have changed. The folder is watched, not
 * the file: editors that save by writing a new file and renaming it over
 * the old one (vim, most IDEs), and Kubernetes' config maps (a symlink
 * swapped in the folder), replace the file, and a watch on the file itself
 * would go on watching the old one. Any event in the folder counts; the
 * caller compares the file's text to know whether it really changed.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Call `onChange` once things have been quiet for `debounceMs` after any change in `file`'s folder. Returns a stop function. */
export function watchConfig(file: string, onChange: () => void, onError: (error: Error) => void, debounceMs = 100): () => void {
  let timer: NodeJS.Timeout | null = null;
  let watcher: FSWatcher | null = null;
  const fire = (): void => {
    // An editor's save is several events (write, rename, chmod): one reload for all of them.
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, debounceMs);
  };
  try {
    // Not persistent: the server keeps the process alive, the watch must not keep it after close.
    watcher = watch(dirname(resolve(file)), { persistent: false }, fire);
    watcher.on('error', onError);
  } catch (error) {
    onError(error as Error);
  }
  return () => {
    if (timer !== null) clearTimeout(timer);
    watcher?.close();
  };
}
