// iii-browser-sdk/state: types only (see state.d.ts). This module exists so that the
// `iii-browser-sdk/state` entry point also resolves at run time.
export {}
