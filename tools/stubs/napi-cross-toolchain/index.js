'use strict';
// modelprint builds its addon natively; cross toolchains are not available in this checkout.
throw new Error('@napi-rs/cross-toolchain is stubbed in modelprint: `napi build --use-napi-cross` is not supported; build natively');
