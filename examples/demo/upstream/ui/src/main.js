import { heading } from "./view.js";

document.getElementById("app").textContent = heading(window.location.host);
