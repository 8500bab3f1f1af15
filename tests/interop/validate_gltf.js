// Validate a glTF file with the Khronos glTF validator; prints its report as JSON.
// Usage: NODE_PATH=<node tools>/node_modules node tests/interop/validate_gltf.js FILE.glb
const fs = require('fs');
const validator = require('gltf-validator');
validator.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2])), { maxIssues: 100 })
    .then((report) => console.log(JSON.stringify(report)))
    .catch((error) => { console.error(error); process.exit(1); });
