// Reveal page of the one-time secret service.
//
// The key is read from the link's fragment, which browsers never send to a
// server. Loading the page only checks the access token (POST .../status),
// which changes nothing; the secret is claimed when the reader clicks Reveal.
// The derivations must match include/secret_service/crypto.py (scheme
// cdx-secret/v1): HKDF-SHA256 for the access token and the encryption key,
// PBKDF2-SHA256 plus HKDF when a passphrase is set, AES-256-GCM to decrypt.
"use strict";

(() => {
  const SCHEME = "cdx-secret/v1";
  const KEY_TEXT_LENGTH = 43;
  const PBKDF2_MIN_ITERATIONS = 600000;
  const PBKDF2_MAX_ITERATIONS = 10000000;
  const EMPTY = new Uint8Array(0);
  const encoder = new TextEncoder();

  const MESSAGES = {
    unavailable:
      "This secret was already viewed or expired, or its sender withdrew it. " +
      "It cannot be shown again; ask the sender for a new link.",
    noKey:
      "This link is incomplete: the key after “#” is missing. " +
      "Open the whole link from the message you received.",
    damagedKey:
      "This link is damaged: its key is truncated or altered. " +
      "Open the whole link from the message you received.",
    notALink: "This address is not a one-time secret link.",
    wrongKey:
      "The key in this link does not match the secret. " +
      "Open the whole link from the message you received.",
    ready: "Click Reveal to show the secret. The server deletes it at the same time.",
    passphrase: "This secret is protected by a passphrase. Enter it, then click Reveal.",
    shown: "The secret is shown below and has been deleted from the server.",
    undecryptable:
      "The secret was received but could not be decrypted, and the server has deleted it. " +
      "Ask the sender for a new link.",
  };

  const page = {};
  const state = { secretId: null, key: null, accessToken: null, passphrase: null, text: "" };

  function show(text, kind) {
    page.message.textContent = text;
    page.message.className = kind || "";
  }

  function b64urlEncode(bytes) {
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // Strict unpadded base64url, the same rules as crypto.b64url_decode.
  function b64urlDecode(text) {
    if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
      throw new Error("invalid base64url text");
    }
    const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    const bytes = Uint8Array.from(atob(padded), (char) => char.charCodeAt(0));
    if (b64urlEncode(bytes) !== text) throw new Error("non-canonical base64url text");
    return bytes;
  }

  async function hkdf(ikm, salt, info) {
    const base = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
    const params = { name: "HKDF", hash: "SHA-256", salt: salt, info: encoder.encode(info) };
    return new Uint8Array(await crypto.subtle.deriveBits(params, base, 256));
  }

  async function pbkdf2(passphrase, salt, iterations) {
    const secret = encoder.encode(passphrase.normalize("NFC"));
    const base = await crypto.subtle.importKey("raw", secret, "PBKDF2", false, ["deriveBits"]);
    const params = { name: "PBKDF2", hash: "SHA-256", salt: salt, iterations: iterations };
    return new Uint8Array(await crypto.subtle.deriveBits(params, base, 256));
  }

  function parseLocation() {
    const match = /\/s\/([A-Za-z0-9_-]{22})$/.exec(window.location.pathname);
    if (!match) return { error: MESSAGES.notALink };
    const fragment = window.location.hash.slice(1);
    if (!fragment) return { error: MESSAGES.noKey };
    if (fragment.length !== KEY_TEXT_LENGTH) return { error: MESSAGES.damagedKey };
    try {
      return { secretId: match[1], key: b64urlDecode(fragment) };
    } catch (error) {
      return { error: MESSAGES.damagedKey };
    }
  }

  // Relative paths resolve against /s/<id>; a fragment is never part of a request.
  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
      referrerPolicy: "no-referrer",
    });
    let data = {};
    try {
      data = await response.json();
    } catch (error) {
      data = {};
    }
    return { status: response.status, data: data };
  }

  // Returns true when the caller may let the reader try again.
  function showFailure(status, data) {
    if (status === 410) {
      show(MESSAGES.unavailable, "error");
      return false;
    }
    if (status === 403 && data.error === "invalid_access_token") {
      show(MESSAGES.wrongKey, "error");
      return false;
    }
    if (status === 429) {
      show(`Too many attempts from your network. Try again in ${data.retry_after_seconds} seconds.`, "error");
      return true;
    }
    show(`The secret service returned an error (HTTP ${status}). Try again later.`, "error");
    return true;
  }

  function endInteraction() {
    page.reveal.hidden = true;
    page.passphraseBox.hidden = true;
  }

  async function checkStatus() {
    const parsed = parseLocation();
    if (parsed.error) {
      show(parsed.error, "error");
      endInteraction();
      return;
    }
    state.secretId = parsed.secretId;
    state.key = parsed.key;
    state.accessToken = b64urlEncode(await hkdf(state.key, EMPTY, `${SCHEME} access-token`));

    const { status, data } = await post("../api/secrets/status", {
      secret_id: state.secretId,
      access_token: state.accessToken,
    });
    if (status !== 200) {
      if (!showFailure(status, data)) endInteraction();
      return;
    }
    state.passphrase = data.passphrase;
    page.passphraseBox.hidden = !state.passphrase;
    show(state.passphrase ? MESSAGES.passphrase : MESSAGES.ready);
    page.reveal.disabled = false;
  }

  // Returns {encryptionKey, verifier} for this secret, or null when the input is missing.
  async function deriveKeys() {
    if (!state.passphrase) {
      return { encryptionKey: await hkdf(state.key, EMPTY, `${SCHEME} encryption`), verifier: null };
    }
    const passphrase = page.passphrase.value;
    if (!passphrase) {
      show("Enter the passphrase first.", "error");
      return null;
    }
    const iterations = state.passphrase.iterations;
    if (state.passphrase.kdf !== "pbkdf2-sha256" || !Number.isInteger(iterations) ||
        iterations < PBKDF2_MIN_ITERATIONS || iterations > PBKDF2_MAX_ITERATIONS) {
      throw new Error("unsupported passphrase parameters");
    }
    show("Deriving the key from the passphrase…");
    const salt = b64urlDecode(state.passphrase.salt);
    const stretched = await pbkdf2(passphrase, salt, iterations);
    const material = new Uint8Array(state.key.length + stretched.length);
    material.set(state.key, 0);
    material.set(stretched, state.key.length);
    return {
      encryptionKey: await hkdf(material, salt, `${SCHEME} passphrase encryption`),
      verifier: b64urlEncode(await hkdf(material, salt, `${SCHEME} passphrase verifier`)),
    };
  }

  async function decryptAndShow(data, encryptionKey) {
    try {
      const aesKey = await crypto.subtle.importKey("raw", encryptionKey, "AES-GCM", false, ["decrypt"]);
      const plaintext = await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: b64urlDecode(data.nonce),
          additionalData: encoder.encode(SCHEME),
          tagLength: 128,
        },
        aesKey,
        b64urlDecode(data.ciphertext),
      );
      // ignoreBOM keeps a leading U+FEFF, so the text round-trips exactly.
      state.text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(plaintext);
    } catch (error) {
      show(MESSAGES.undecryptable, "error");
      return;
    }
    page.secret.textContent = state.text;
    page.result.hidden = false;
    show(MESSAGES.shown, "done");
  }

  async function reveal() {
    page.reveal.disabled = true;
    const keys = await deriveKeys();
    if (!keys) {
      page.reveal.disabled = false;
      return;
    }
    const body = { secret_id: state.secretId, access_token: state.accessToken };
    if (keys.verifier) body.passphrase_verifier = keys.verifier;

    const { status, data } = await post("../api/secrets/reveal", body);
    if (status === 200) {
      endInteraction();
      await decryptAndShow(data, keys.encryptionKey);
      return;
    }
    if (status === 403 && data.error === "wrong_passphrase") {
      page.passphrase.value = "";
      show(`Wrong passphrase. ${data.attempts_left} more wrong attempts delete the secret.`, "error");
      page.reveal.disabled = false;
      return;
    }
    if (showFailure(status, data)) {
      page.reveal.disabled = false;
    } else {
      endInteraction();
    }
  }

  async function copy() {
    try {
      await navigator.clipboard.writeText(state.text);
      show("Copied to the clipboard.", "done");
    } catch (error) {
      show("Copying failed; select the text and copy it by hand.", "error");
    }
  }

  function fail(error) {
    show(`Something went wrong in this page (${error.message}). Reload it to try again.`, "error");
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const id of ["message", "reveal", "result", "secret", "copy", "passphrase"]) {
      page[id] = document.getElementById(id);
    }
    page.passphraseBox = document.getElementById("passphrase-box");
    page.reveal.addEventListener("click", () => reveal().catch(fail));
    page.copy.addEventListener("click", () => copy().catch(fail));
    // Pasting the full link over an incomplete one changes only the fragment,
    // which does not load the page again.
    window.addEventListener("hashchange", () => window.location.reload());
    page.passphrase.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !page.reveal.disabled) page.reveal.click();
    });
    if (!window.isSecureContext || !window.crypto || !window.crypto.subtle) {
      show("This page needs a secure (HTTPS) connection and a browser with WebCrypto.", "error");
      return;
    }
    checkStatus().catch(fail);
  });
})();
