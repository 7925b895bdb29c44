// twisted-chat: the browser client.  Vanilla JavaScript, no build step.
// It speaks the JSON WebSocket protocol of docs/PROTOCOL.md at /ws.
// Everything users send is rendered with textContent, never as HTML.
"use strict";

(function () {
  const MAX_LINES = 1000;          // messages kept on the page (private ones are kept first)
  const MAX_PRIVATE = 200;         // private messages kept for the tab
  const MAX_BACKOFF = 30;          // seconds between reconnection attempts, at most
  const ROOMS_DELAY = 3000;        // ms: one /rooms refresh after a burst of notices
  const TAKEN_RETRIES = 6;         // re-login tries while our old connection lingers
  const UNCONFIRMED_AFTER = 5000;  // ms: a line the server has not answered is flagged
  const BOTTOM_SLACK = 24;         // px from the bottom that still counts as "at the bottom"

  // sessionStorage keys: this tab only, gone when it closes.
  const SAVED_LOGIN = "twisted-chat-login";       // {passcode, name}, unless unticked
  const SAVED_REMEMBER = "twisted-chat-remember"; // "no" when the box was unticked
  const SAVED_ROOM = "twisted-chat-room";         // the room to come back to
  const SAVED_PRIVATE = "twisted-chat-private";   // {name, events}: this session's private messages

  const $ = (id) => document.getElementById(id);
  const loginForm = $("login");
  const loginError = $("login-error");
  const loginButton = $("login-button");
  const passcodeInput = $("passcode");
  const nameInput = $("name");
  const passwordRow = $("password-row");
  const passwordInput = $("password");
  const rememberInput = $("remember");
  const chat = $("chat");
  const region = $("messages-region");
  const list = $("messages");
  const jump = $("jump");
  const side = $("side");
  const sideToggle = $("side-toggle");
  const roomsList = $("rooms");
  const roomsTitle = $("rooms-title");
  const usersList = $("users");
  const usersTitle = $("users-title");
  const roomTitle = $("room-title");
  const statusLine = $("status");
  const sendForm = $("send");
  const input = $("message");

  let socket = null;          // the current WebSocket
  let creds = null;           // {passcode, name, password}; the password is never saved
  let loginPending = false;   // a login was sent and not yet answered
  let loggedIn = false;       // welcomed on the current socket
  let reconnecting = false;   // keep reconnecting when the socket drops
  let leftChat = false;       // the user typed /quit
  let attempt = 0;            // reconnection attempts since the last welcome
  let takenRetries = 0;
  let retryTimer = null;
  let roomsTimer = null;
  let roomsTyped = 0;         // /rooms answers the user asked for (shown as text)
  let me = null;
  let room = null;
  let rejoin = null;          // the room to go back to after the next welcome
  let rooms = [];             // [{name, users}] as the server last listed them
  let users = [];             // names in our room, as the server last listed them
  let usersMore = 0;          // how many more the server did not list
  let privates = [];          // this session's private message events, oldest first
  let nextId = 0;             // client ids of the lines we send
  let maxLine = 0;            // the server's --max-line in bytes (0: not told)
  const pending = new Map();  // id -> echo <li> (or null) the server has not answered
  let probing = 0;           // the id of an empty command out to find a refused line
  let stuck = true;           // follow new messages: set by the user's scrolling
  let unseen = 0;             // lines added while the user was scrolled up

  // -- storage (this tab only) -------------------------------------------------

  function load(key) {
    try {
      const text = sessionStorage.getItem(key);
      return text === null ? null : JSON.parse(text);
    } catch (err) {
      return null;              // storage off, or not ours
    }
  }

  function save(key, value) {
    try {
      if (value === null) sessionStorage.removeItem(key);
      else sessionStorage.setItem(key, JSON.stringify(value));
    } catch (err) { /* storage off or full: the page still works */ }
  }

  function saveLogin() {
    save(SAVED_REMEMBER, rememberInput.checked ? null : "no");
    // Never the password: after a reload the page asks for it again.
    save(SAVED_LOGIN, rememberInput.checked && creds && loggedIn
      ? {passcode: creds.passcode, name: creds.name} : null);
  }

  function forgetSession() {
    save(SAVED_LOGIN, null);
    save(SAVED_ROOM, null);
    save(SAVED_PRIVATE, null);
  }

  // -- rendering ---------------------------------------------------------------

  function pad(n) { return String(n).padStart(2, "0"); }

  function stamp(seconds, withDate) {
    const d = new Date(seconds * 1000);
    const time = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    if (!withDate) return time;
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + time;
  }

  // The browser's own zone, as "UTC+01:00", for the times' tooltips.
  function zone(d) {
    const minutes = -d.getTimezoneOffset();
    const sign = minutes < 0 ? "-" : "+";
    const abs = Math.abs(minutes);
    return "UTC" + sign + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60);
  }

  // Times come as seconds since the epoch and show in the browser's zone.
  function timeElement(seconds, withDate) {
    const t = document.createElement("time");
    const d = new Date(seconds * 1000);
    t.dateTime = d.toISOString();
    t.title = stamp(seconds, true) + " " + zone(d);
    t.textContent = "[" + stamp(seconds, withDate) + "] ";
    return t;
  }

  function span(className, text) {
    const s = document.createElement("span");
    s.className = className;
    s.textContent = text;
    return s;
  }

  // -- following new messages ----------------------------------------------

  function atBottom() {
    return region.scrollHeight - region.scrollTop - region.clientHeight <= BOTTOM_SLACK;
  }

  function pin() {
    region.scrollTop = region.scrollHeight;
  }

  function follow() {
    stuck = true;
    unseen = 0;
    jump.hidden = true;
    pin();
  }

  // Only the user's scrolling changes "stuck": a list that got shorter (a
  // smaller window, a rotated phone, a longer room list) or that the layout
  // moved is pinned again, never taken for the user reading further up.
  let userAt = -Infinity;     // when the user last touched, wheeled or pressed a key
  function userScrolls() { userAt = Date.now(); }
  for (const type of ["touchstart", "touchmove", "pointerdown"]) {
    region.addEventListener(type, userScrolls, {passive: true});
  }
  region.addEventListener("wheel", (e) => {
    userScrolls();
    if (e.deltaY < 0 && region.scrollTop > 0) stuck = false;  // at once: a line may come first
  }, {passive: true});
  document.addEventListener("keydown", (e) => {
    if (!(e.target instanceof HTMLInputElement)) userScrolls();
  });

  region.addEventListener("scroll", () => {
    if (atBottom()) {
      stuck = true;
      unseen = 0;
      jump.hidden = true;
    } else if (Date.now() - userAt < 1000) {
      stuck = false;
    } else if (stuck) {
      pin();
    }
  }, {passive: true});

  function repin() { if (stuck) pin(); }

  if (typeof ResizeObserver === "function") {
    const watch = new ResizeObserver(repin);
    watch.observe(region);      // the window, the room list, the keyboard
    watch.observe(list);        // lines re-wrapped at a new width
  }
  window.addEventListener("resize", repin);

  jump.addEventListener("click", () => {
    follow();
    input.focus();
  });

  // Add one line to the message list; parts are nodes or strings (as text).
  function addLine(className, parts) {
    const li = document.createElement("li");
    li.className = className;
    for (const part of parts) {
      li.append(typeof part === "string" ? document.createTextNode(part) : part);
    }
    list.append(li);
    while (list.childElementCount > MAX_LINES) {
      (list.querySelector("li:not(.private)") || list.firstElementChild).remove();
    }
    if (stuck) {
      pin();
    } else {
      unseen += 1;
      jump.textContent = unseen === 1 ? "1 new message \u2193" : unseen + " new messages \u2193";
      jump.hidden = false;
    }
    return li;
  }

  function messageParts(entry, withDate) {
    const parts = [timeElement(entry.time, withDate)];
    if (entry.action) parts.push("* ", span("from", entry.from), " " + entry.text);
    else parts.push(span("from", entry.from), ": " + entry.text);
    return parts;
  }

  function info(text, className) { return addLine(className || "info", [text]); }

  function setStatus(text, problem) {
    statusLine.textContent = text;
    statusLine.classList.toggle("problem", Boolean(problem));
  }

  function setRoom(name, topic) {
    room = name;
    roomTitle.textContent = name ? "#" + name + (topic ? " \u2014 " + topic : "") : "";
    document.title = name ? "#" + name + " - twisted-chat" : "twisted-chat";
    if (name) save(SAVED_ROOM, name);
    for (const button of roomsList.querySelectorAll("button")) {
      button.setAttribute("aria-current", String(button.dataset.room === name));
    }
  }

  function renderUsers() {
    usersList.replaceChildren();
    const total = users.length + usersMore;
    usersTitle.textContent = room ? "Users in #" + room + " (" + total + ")" : "Users";
    for (const name of users) {
      const li = document.createElement("li");
      if (name === me) {
        li.append(span("me", name + " (you)"));
      } else {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = name;
        button.title = "Send " + name + " a private message";
        button.addEventListener("click", () => {
          input.value = "/msg " + name + " ";
          input.focus();
        });
        li.append(button);
      }
      usersList.append(li);
    }
    if (usersMore > 0) {
      const li = document.createElement("li");
      li.append(span("more", "and " + usersMore + " more"));
      usersList.append(li);
    }
  }

  function renderRooms() {
    roomsList.replaceChildren();
    roomsTitle.textContent = rooms.length ? "Rooms (" + rooms.length + ")" : "Rooms";
    for (const r of rooms) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.room = r.name;
      button.textContent = "#" + r.name + " (" + r.users + ")";
      button.title = r.name === room ? "You are here" : "Join #" + r.name;
      button.setAttribute("aria-current", String(r.name === room));
      button.addEventListener("click", () => {
        if (r.name !== room) command("/join #" + r.name);
        input.focus();
      });
      li.append(button);
      roomsList.append(li);
    }
  }

  // -- private messages (kept for the tab) --------------------------------

  function showPrivate(event) {
    const outgoing = event.from === me && event.to !== me;
    const head = outgoing ? "[private to " + event.to + "] " : "[private] ";
    const parts = [timeElement(event.time, false), head];
    if (!outgoing) parts.push(span("from", event.from), ": ");
    parts.push(event.text);
    addLine("private", parts);
  }

  function keepPrivate(event) {
    privates.push(event);
    if (privates.length > MAX_PRIVATE) privates.shift();
    save(SAVED_PRIVATE, {name: me, events: privates});
  }

  // After a reload: show the private messages this tab had, once.
  function restorePrivates(name) {
    const saved = load(SAVED_PRIVATE);
    if (!saved || saved.name !== name || !Array.isArray(saved.events)) return;
    privates = saved.events.filter((e) => e && typeof e.text === "string").slice(-MAX_PRIVATE);
    if (!privates.length) return;
    me = name;
    addLine("history-mark", ["Private messages earlier in this tab"]);
    for (const event of privates) showPrivate(event);
    addLine("history-mark", ["end of private messages"]);
  }

  // -- the login form and the header --------------------------------------

  // Show the login form with a message (an error, or a neutral note), and
  // focus the first empty field, or the one the error is about.
  function showLogin(message, neutral) {
    chat.hidden = true;
    loginForm.hidden = false;
    loginButton.disabled = false;
    if (message !== undefined) {
      loginError.textContent = message;
      loginError.classList.toggle("note", Boolean(neutral));
    }
    if (creds) {
      nameInput.value = creds.name;
      passcodeInput.value = creds.passcode;
    }
    if (message && /passcode/i.test(message)) passcodeInput.value = "";
    const empty = [passcodeInput, nameInput].find((field) => !field.value);
    const target = empty || (message && /name/i.test(message) ? nameInput : passcodeInput);
    target.focus();
    if (!empty) target.select();
  }

  function showChat() {
    loginForm.hidden = true;
    loginError.textContent = "";
    chat.hidden = false;
    input.focus();
  }

  // -- the connection --------------------------------------------------------

  function url() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  }

  function transmit(message) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  function sendLogin() {
    const message = {type: "login", passcode: creds.passcode, name: creds.name};
    if (creds.password) message.password = creds.password;
    loginPending = transmit(message);
  }

  // The server said the name is registered: ask for its password.
  function askPassword() {
    passwordRow.hidden = false;
    passwordInput.value = "";
    passwordInput.focus();
  }

  // Send a say or a command with a fresh id; `echo` (if any) stays pending
  // until the server acknowledges the line or reports it refused.
  function sendLine(type, text, echo) {
    const id = ++nextId;
    if (!transmit({type: type, text: text, id: id})) return false;
    pending.set(id, echo || null);
    if (echo) {
      echo.classList.add("pending");
      echo.append(span("state", " (sending\u2026)"));
      setTimeout(() => {
        if (pending.get(id) === echo) unconfirmed(echo, " (not confirmed yet)");
      }, UNCONFIRMED_AFTER);
    }
    return true;
  }

  function command(text) {
    if (/^\s*\/rooms\s*$/i.test(text)) roomsTyped += 1;
    return sendLine("command", text, null);
  }

  function setState(echo, text) {
    const state = echo.querySelector(".state");
    if (state) state.textContent = text;
  }

  // Never shown as sent: it stays pending, saying why.
  function unconfirmed(echo, text) {
    echo.classList.add("unconfirmed");
    setState(echo, text);
  }

  function accepted(echo) {
    echo.classList.remove("pending", "unconfirmed");
    echo.classList.add("sent");
    const state = echo.querySelector(".state");
    if (state) state.remove();
  }

  function refused(echo, why) {
    echo.classList.remove("pending", "unconfirmed");
    echo.classList.add("failed");
    // A message was not delivered; a command was refused.
    setState(echo, (echo.classList.contains("echo") ? " \u2014 failed: " : " \u2014 not sent: ") + why);
  }

  // The server answers lines in the order it got them, so once line `id` is
  // answered, an older one still waiting was refused before it was read
  // (a frame too long to parse gets an error without an id).
  function answered(id, error) {
    for (const [older, echo] of pending) {
      if (older >= id) break;
      pending.delete(older);
      if (echo) refused(echo, "the server refused it");
    }
    if (!pending.has(id)) return false;
    const echo = pending.get(id);
    pending.delete(id);
    if (id === probing) probing = 0;
    if (!echo) return false;
    if (error === undefined) accepted(echo);
    else refused(echo, error);
    return true;
  }

  // An error without an id while lines wait: an empty command (which the
  // server always acknowledges) finds out which of them it was about.
  function probe() {
    if (probing || !pending.size) return;
    const id = ++nextId;
    if (transmit({type: "command", text: "", id: id})) {
      pending.set(id, null);
      probing = id;
    }
  }

  function refreshRooms() {
    clearTimeout(roomsTimer);
    roomsTimer = null;
    if (loggedIn) sendLine("command", "/rooms", null);
  }

  function refreshRoomsSoon() {
    if (roomsTimer === null) roomsTimer = setTimeout(refreshRooms, ROOMS_DELAY);
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (socket) socket.close();
    setStatus(attempt ? "Reconnecting..." : "Connecting...");
    const ws = new WebSocket(url());
    socket = ws;
    loggedIn = false;
    loginPending = false;
    ws.onopen = () => {
      if (ws === socket && creds) sendLogin();
    };
    ws.onmessage = (e) => {
      if (ws !== socket) return;
      let event;
      try {
        event = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (event && typeof event.type === "string") handle(event);
    };
    ws.onclose = () => {
      if (ws !== socket) return;
      socket = null;
      closed();
    };
  }

  function closed() {
    const wasLoggedIn = loggedIn;
    loggedIn = false;
    loginPending = false;
    probing = 0;
    clearTimeout(roomsTimer);
    roomsTimer = null;
    // What the server never answered may or may not have been delivered.
    for (const echo of pending.values()) {
      if (echo) unconfirmed(echo, " (not confirmed: the connection dropped)");
    }
    pending.clear();
    if (wasLoggedIn && room) rejoin = room;
    if (reconnecting) {
      const delay = Math.min(MAX_BACKOFF, 2 ** attempt) * (0.75 + Math.random() / 4);
      attempt += 1;
      const seconds = Math.max(1, Math.round(delay));
      if (wasLoggedIn) info("Connection lost.", "error");
      setStatus("Connection lost; reconnecting in " + seconds + " s", true);
      retryTimer = setTimeout(connect, delay * 1000);
    } else if (leftChat) {
      setStatus("Logged out");
      showLogin("You left the chat. Log in again to come back.", true);
    } else {
      setStatus("Not connected");
      if (loginForm.hidden) {
        showLogin(loginError.textContent || "You are no longer connected. Log in again.");
      } else {
        showLogin(loginError.textContent || "Could not reach the server; try again.");
      }
    }
  }

  // -- what the server says ------------------------------------------------

  // The notice changes that add or remove someone from the room's user list.
  const MEMBERSHIP = ["joined", "left", "offline", "kicked"];

  function handle(event) {
    switch (event.type) {
      case "welcome": {
        const again = attempt > 0 || rejoin !== null;
        loggedIn = true;
        loginPending = false;
        reconnecting = true;
        attempt = 0;
        takenRetries = 0;
        me = event.name;
        maxLine = Number.isInteger(event.max_line) ? event.max_line : 0;
        users = [];
        usersMore = 0;
        saveLogin();
        setRoom(event.room);
        showChat();
        setStatus("Connected as " + me);
        info("Welcome, " + event.name + "! You are in #" + event.room + ". Type /help for commands.");
        const back = rejoin;
        rejoin = null;
        if (back && back !== event.room) {
          info("Reconnected; going back to #" + back + ".");
          sendLine("command", "/join #" + back, null);
        } else if (again) {
          info("Reconnected.");
        }
        refreshRooms();
        break;
      }
      case "ack":
        answered(event.id);
        break;
      case "prompt":
        // The page answers prompts from the login form; a prompt with no
        // login on its way means the server wants one.
        if (!loginPending && !loggedIn && loginForm.hidden) showLogin();
        break;
      case "error":
        if (loggedIn) {
          if (event.id !== undefined && answered(event.id, event.text)) break;
          addLine("error", ["Error: " + event.text]);
          if (event.code === "killed" || event.code === "banned_from_server") {
            // An operator closes us on purpose: coming straight back would
            // undo it. The login form says why once the socket closes.
            reconnecting = false;
            rejoin = null;
            loginError.textContent = event.text;
            break;
          }
          if (event.id === undefined) probe();
        } else {
          loginPending = false;
          if (reconnecting && /taken/.test(event.text) && takenRetries < TAKEN_RETRIES) {
            // Our old connection may still hold the name: try again shortly.
            takenRetries += 1;
            const old = socket;
            socket = null;
            old.close();
            closed();
            return;
          }
          reconnecting = false;
          rejoin = null;
          setStatus("Not logged in");
          if (event.code === "password_required") {
            showLogin(event.text, true);
            askPassword();
            break;
          }
          save(SAVED_LOGIN, null);  // a remembered login that fails is forgotten
          if (creds) creds.password = "";
          showLogin(event.text);
          if (event.code === "wrong_password") askPassword();
        }
        break;
      case "message":
        addLine(event.action ? "message action" : "message", messageParts(event, false));
        break;
      case "private":
        keepPrivate(event);
        showPrivate(event);
        break;
      case "notice":
        addLine(event.change === "wall" ? "notice wall" : "notice",
                [timeElement(event.time, false), "*** " + event.text + " ***"]);
        if (event.change === "topic" && event.room === room) setRoom(room, event.detail);
        if (event.user && event.room === room && event.user !== me &&
            MEMBERSHIP.includes(event.change)) {
          users = users.filter((name) => name !== event.user);
          if (event.change === "joined") {
            users.push(event.user);
            users.sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
          }
          renderUsers();
          // Our room's count is known now; the others come with the next /rooms.
          const here = rooms.find((r) => r.name === room);
          if (here) {
            here.users = Math.max(0, here.users + (event.change === "joined" ? 1 : -1));
            renderRooms();
          }
        }
        refreshRoomsSoon();
        break;
      case "joined":
        setRoom(event.room);
        users = [];
        usersMore = 0;
        renderUsers();
        addLine("divider", ["You are now in #" + event.room + "."]);
        refreshRooms();
        break;
      case "users": {
        const names = event.users.map((u) => u.name);
        if (event.room === null) {
          info("Users online (" + event.total + "): " +
               event.users.map((u) => u.name + " (#" + u.room + ")").join(", "));
          break;
        }
        if (event.room === room) {
          users = names;
          usersMore = event.total - names.length;
          renderUsers();
        }
        info("Users in #" + event.room + " (" + event.total + "): " + names.join(", ") +
             (event.total > names.length ? ", and " + (event.total - names.length) + " more" : ""));
        break;
      }
      case "rooms":
        rooms = event.rooms;
        renderRooms();
        if (roomsTyped > 0) {
          roomsTyped -= 1;
          info("Rooms (" + event.rooms.length + "): " +
               event.rooms.map((r) => "#" + r.name + " (" + r.users + ")").join(", "));
        }
        break;
      case "history":
      case "search":
        showEntries(event);
        break;
      case "help":
        info("Commands:");
        for (const c of event.commands) info("  " + c.usage + "  " + c.text);
        break;
      case "info":
        // The server's zone matters to telnet's stamps; the page shows every
        // time in the browser's own zone instead.
        if (typeof event.utc_offset === "number") {
          info("Times are shown in your time zone (" + zone(new Date()) + ").");
        } else {
          info(event.text);
        }
        break;
      case "goodbye": {
        // The answer to the oldest line waiting (/quit, :Exit): it was taken.
        const first = pending.keys().next();
        if (!first.done) answered(first.value);
        reconnecting = false;
        leftChat = true;
        rejoin = null;
        forgetSession();
        info("Goodbye!");
        setRoom(null);
        rooms = [];
        users = [];
        usersMore = 0;
        renderRooms();
        renderUsers();
        setStatus("Logged out");
        break;
      }
      case "shutdown":
        info("*** " + (event.text || "Server shutting down") + " ***", "error");
        break;
      case "topic":
        if (event.room === room) setRoom(room, event.text);
        info(event.text ? "Topic of #" + event.room + ": " + event.text +
             (event.by ? " (set by " + event.by + " " + stamp(event.time, true) + ")" : "")
             : "#" + event.room + " has no topic.");
        break;
      case "bans": {
        const where = event.room === null ? "the server" : "#" + event.room;
        for (const [title, list] of [["Bans", event.bans], ["Mutes", event.mutes]]) {
          if (!list.length) {
            info("No " + title.toLowerCase() + " in " + where + ".");
            continue;
          }
          info(title + " in " + where + " (" + list.length + "):");
          for (const b of list) {
            const left = b.until === null ? "until lifted"
              : lasting(b.until - event.time) + " left";
            info("  " + b.target + " (by " + (b.by || "the server") + ", " + left + ")" +
                 (b.reason ? ": " + b.reason : ""));
          }
        }
        break;
      }
      case "whois": {
        const who = event.operator ? "an operator" : event.account ? "an account" : "a guest";
        info(event.name + " is " + who + ", online since " + stamp(event.since, true) +
             ", idle " + lasting(event.idle));
        info("  rooms: " + (event.rooms.length ? event.rooms.map((r) => "#" + r).join(", ")
                                              : "none"));
        if (event.address) info("  address: " + event.address);
        if (event.away) info("  away: " + event.away);
        break;
      }
      case "away":
        info(event.name + " is away: " + event.text);
        break;
      default:
        if (typeof event.text === "string") info(event.text);
    }
  }

  // Seconds in two units at most, as telnet writes them: 45s, 2h 5m, 6d 23h.
  function lasting(seconds) {
    let left = Math.round(seconds);
    if (left <= 0) return "0s";
    const parts = [];
    for (const [unit, size] of [["w", 604800], ["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
      if (left >= size) {
        parts.push(Math.floor(left / size) + unit);
        left %= size;
        if (parts.length === 2) break;
      }
    }
    return parts.join(" ");
  }

  function showEntries(event) {
    const entries = event.messages || [];
    let title;
    if (event.type === "search") {
      title = entries.length + " matches for \"" + event.words + "\" in #" + event.room;
    } else if (event.replay) {
      if (!entries.length) return;
      title = "Recent messages in #" + event.room;
    } else {
      title = entries.length ? "Last " + entries.length + " messages in #" + event.room
                             : "No messages in #" + event.room + " yet.";
    }
    addLine("history-mark", [title]);
    for (const entry of entries) addLine("history", messageParts(entry, true));
    if (entries.length) addLine("history-mark", [event.type === "search" ? "end of search" : "end of history"]);
  }

  // -- what the user does --------------------------------------------------

  function logIn(passcode, name, password) {
    creds = {passcode: passcode, name: name, password: password || ""};
    try { localStorage.setItem("twisted-chat-name", name); } catch (err) { /* private mode */ }
    if (privates.length && me !== name) privates = [];
    attempt = 0;
    takenRetries = 0;
    leftChat = false;
    if (socket && socket.readyState === WebSocket.OPEN && !loggedIn) sendLogin();
    else connect();
  }

  loginForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = nameInput.value.trim();
    if (!name) {
      loginError.textContent = "Enter a name.";
      loginError.classList.remove("note");
      nameInput.focus();
      return;
    }
    loginError.textContent = "";
    loginButton.disabled = true;
    reconnecting = false;
    logIn(passcodeInput.value, name, passwordRow.hidden ? "" : passwordInput.value);
  });

  // Another name: the password asked for the last one does not apply.
  nameInput.addEventListener("input", () => {
    passwordRow.hidden = true;
    passwordInput.value = "";
  });

  rememberInput.addEventListener("change", saveLogin);

  sendForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim() || !loggedIn) return;
    follow();  // what you send, you see
    const now = Date.now() / 1000;
    const isCommand = /^[/:\\]/.test(text);
    let echo;
    if (!isCommand) {
      echo = addLine("message mine", messageParts({time: now, from: me, text: text}, false));
    } else {
      const action = /^\/me\s+(.+)$/i.exec(text);
      echo = action
        ? addLine("message action mine",
                  messageParts({time: now, from: me, text: action[1], action: true}, false))
        : addLine("echo", ["> " + text]);
      if (/^\s*\/rooms\s*$/i.test(text)) roomsTyped += 1;
    }
    const size = new TextEncoder().encode(text).length;
    if (maxLine && size > maxLine) {
      // The server would refuse it (and a frame far too long closes the socket).
      echo.append(span("state", ""));
      refused(echo, "line too long (max " + maxLine + " bytes)");
    } else if (sendLine(isCommand ? "command" : "say", text, echo)) {
      input.value = "";
    } else {
      echo.remove();
    }
  });

  $("rooms-refresh").addEventListener("click", refreshRooms);

  // Phone width: the room and user lists fold away to give the messages room.
  sideToggle.addEventListener("click", () => {
    const open = sideToggle.getAttribute("aria-expanded") !== "true";
    sideToggle.setAttribute("aria-expanded", String(open));
    sideToggle.textContent = open ? "hide lists" : "show lists";
    side.classList.toggle("folded", !open);
  });

  // -- start ------------------------------------------------------------------

  rememberInput.checked = load(SAVED_REMEMBER) !== "no";
  try {
    nameInput.value = localStorage.getItem("twisted-chat-name") || "";
  } catch (err) { /* private mode */ }
  const saved = load(SAVED_LOGIN);
  if (saved && typeof saved.name === "string" && typeof saved.passcode === "string") {
    // A reload: log in again as before, back into the same room.
    const back = load(SAVED_ROOM);
    rejoin = typeof back === "string" ? back : null;
    reconnecting = true;      // and ride out our old connection still holding the name
    chat.hidden = false;
    restorePrivates(saved.name);
    info("Logging in again as " + saved.name + "\u2026");
    logIn(saved.passcode, saved.name);
  } else {
    showLogin();
  }
})();
