"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
//# sourceMappingURL=forbidden-import.js.map