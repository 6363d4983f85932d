export function heading(host) {
  return `Orbit dashboard on ${host}`;
}
