import { benchScale } from './scale.js';
const t = Date.now();
const r = await benchScale({ measureMs: 5000 });
console.log(JSON.stringify(r), Date.now() - t);
