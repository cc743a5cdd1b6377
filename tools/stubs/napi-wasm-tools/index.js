'use strict';
// modelprint builds a native addon only; wasm targets are not available in this checkout.
throw new Error('@napi-rs/wasm-tools is stubbed in modelprint: wasm32 targets are not supported');
