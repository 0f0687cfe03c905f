// The sign-in token lives in this tab's sessionStorage only (gone when the tab closes; never in a URL the server sees).
const KEY = 'gateway-console-token';

export const readToken = (): string | null => sessionStorage.getItem(KEY);
export const saveToken = (token: string) => sessionStorage.setItem(KEY, token);
export const clearToken = () => sessionStorage.removeItem(KEY);

/** GraphiQL, with the caller's token in the fragment (never sent to the server; removed from the address at once). */
export const graphiqlHref = (token: string) => `/graphql#token=${encodeURIComponent(token)}`;
