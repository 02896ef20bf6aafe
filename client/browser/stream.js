// iii-browser-sdk/stream: types only (see stream.d.ts). This module exists so that the
// `iii-browser-sdk/stream` entry point also resolves at run time.
export {}
