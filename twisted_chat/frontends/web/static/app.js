// twisted-chat: the browser client.  Vanilla JavaScript, no build step.
// It speaks the JSON WebSocket protocol of docs/PROTOCOL.md at /ws.
// Everything users send is rendered with textContent, never as HTML.
"use strict";

(function () {
  const MAX_LINES = 1000;          // messages kept on the page
  const MAX_BACKOFF = 30;          // seconds between reconnection attempts, at most
  const ROOMS_DELAY = 3000;        // ms: one /rooms refresh after a burst of notices
  const TAKEN_RETRIES = 6;         // re-login tries while our old connection lingers

  const $ = (id) => document.getElementById(id);
  const loginForm = $("login");
  const loginError = $("login-error");
  const loginButton = $("login-button");
  const passcodeInput = $("passcode");
  const nameInput = $("name");
  const chat = $("chat");
  const region = $("messages-region");
  const list = $("messages");
  const roomsList = $("rooms");
  const usersList = $("users");
  const usersTitle = $("users-title");
  const roomTitle = $("room-title");
  const statusLine = $("status");
  const sendForm = $("send");
  const input = $("message");

  let socket = null;          // the current WebSocket
  let creds = null;           // {passcode, name}: kept in memory only
  let loginPending = false;   // a login was sent and not yet answered
  let loggedIn = false;       // welcomed on the current socket
  let reconnecting = false;   // keep reconnecting when the socket drops
  let attempt = 0;            // reconnection attempts since the last welcome
  let takenRetries = 0;
  let retryTimer = null;
  let roomsTimer = null;
  let roomsTyped = 0;         // /rooms answers the user asked for (shown as text)
  let me = null;
  let room = null;
  let rooms = [];             // [{name, users}] as the server last listed them
  let users = [];             // names in our room, as the server last listed them
  let usersMore = 0;          // how many more the server did not list

  // -- rendering ---------------------------------------------------------------

  function pad(n) { return String(n).padStart(2, "0"); }

  function stamp(seconds, withDate) {
    const d = new Date(seconds * 1000);
    const time = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    if (!withDate) return time;
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + time;
  }

  function timeElement(seconds, withDate) {
    const t = document.createElement("time");
    t.dateTime = new Date(seconds * 1000).toISOString();
    t.textContent = "[" + stamp(seconds, withDate) + "] ";
    return t;
  }

  function span(className, text) {
    const s = document.createElement("span");
    s.className = className;
    s.textContent = text;
    return s;
  }

  // Add one line to the message list; parts are nodes or strings (as text).
  function addLine(className, parts) {
    const nearBottom = region.scrollHeight - region.scrollTop - region.clientHeight < 40;
    const li = document.createElement("li");
    li.className = className;
    for (const part of parts) {
      li.append(typeof part === "string" ? document.createTextNode(part) : part);
    }
    list.append(li);
    while (list.childElementCount > MAX_LINES) list.firstElementChild.remove();
    if (nearBottom) region.scrollTop = region.scrollHeight;
    return li;
  }

  function messageParts(entry, withDate) {
    const parts = [timeElement(entry.time, withDate)];
    if (entry.action) parts.push("* ", span("from", entry.from), " " + entry.text);
    else parts.push(span("from", entry.from), ": " + entry.text);
    return parts;
  }

  function info(text, className) { addLine(className || "info", [text]); }

  function setStatus(text, problem) {
    statusLine.textContent = text;
    statusLine.classList.toggle("problem", Boolean(problem));
  }

  function setRoom(name) {
    room = name;
    roomTitle.textContent = "#" + name;
    document.title = "#" + name + " - twisted-chat";
    for (const button of roomsList.querySelectorAll("button")) {
      button.setAttribute("aria-current", String(button.dataset.room === name));
    }
  }

  function renderUsers() {
    usersList.replaceChildren();
    const total = users.length + usersMore;
    usersTitle.textContent = "Users" + (room ? " in #" + room : "") + " (" + total + ")";
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

  function showLogin(error) {
    chat.hidden = true;
    loginForm.hidden = false;
    loginButton.disabled = false;
    if (error !== undefined) loginError.textContent = error;
    if (creds) {
      nameInput.value = creds.name;
      passcodeInput.value = creds.passcode;
    }
    (nameInput.value ? passcodeInput : nameInput).focus();
    if (error && /name/i.test(error)) nameInput.focus();
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
    loginPending = transmit({type: "login", passcode: creds.passcode, name: creds.name});
  }

  function command(text) {
    if (/^\s*\/rooms\s*$/i.test(text)) roomsTyped += 1;
    return transmit({type: "command", text: text});
  }

  function refreshRooms() {
    clearTimeout(roomsTimer);
    roomsTimer = null;
    if (loggedIn) transmit({type: "command", text: "/rooms"});
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
    clearTimeout(roomsTimer);
    roomsTimer = null;
    if (reconnecting) {
      const delay = Math.min(MAX_BACKOFF, 2 ** attempt) * (0.75 + Math.random() / 4);
      attempt += 1;
      const seconds = Math.max(1, Math.round(delay));
      if (wasLoggedIn) info("Connection lost.", "error");
      setStatus("Connection lost; reconnecting in " + seconds + " s", true);
      retryTimer = setTimeout(connect, delay * 1000);
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

  function handle(event) {
    switch (event.type) {
      case "welcome":
        loggedIn = true;
        loginPending = false;
        reconnecting = true;
        attempt = 0;
        takenRetries = 0;
        me = event.name;
        users = [];
        usersMore = 0;
        setRoom(event.room);
        showChat();
        setStatus("Connected as " + me);
        info("Welcome, " + event.name + "! You are in #" + event.room + ". Type /help for commands.");
        refreshRooms();
        break;
      case "prompt":
        // The page answers prompts from the login form; a prompt with no
        // login on its way means the server wants one.
        if (!loginPending && !loggedIn && loginForm.hidden) showLogin();
        break;
      case "error":
        if (loggedIn) {
          addLine("error", ["Error: " + event.text]);
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
          showLogin(event.text);
        }
        break;
      case "message":
        addLine(event.action ? "message action" : "message", messageParts(event, false));
        break;
      case "private": {
        const outgoing = event.from === me && event.to !== me;
        const head = outgoing ? "[private to " + event.to + "] " : "[private] ";
        const parts = [timeElement(event.time, false), head];
        if (!outgoing) parts.push(span("from", event.from), ": ");
        parts.push(event.text);
        addLine("private", parts);
        break;
      }
      case "notice":
        addLine("notice", [timeElement(event.time, false), "*** " + event.text + " ***"]);
        if (event.user && event.room === room && event.user !== me) {
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
        info(event.text);
        break;
      case "goodbye":
        reconnecting = false;
        loginError.textContent = "You left the chat. Log in again to come back.";
        info("Goodbye!");
        setStatus("Logged out");
        break;
      case "shutdown":
        info("*** " + (event.text || "Server shutting down") + " ***", "error");
        break;
      default:
        if (typeof event.text === "string") info(event.text);
    }
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

  loginForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = nameInput.value.trim();
    if (!name) {
      loginError.textContent = "Enter a name.";
      nameInput.focus();
      return;
    }
    creds = {passcode: passcodeInput.value, name: name};
    try { localStorage.setItem("twisted-chat-name", name); } catch (err) { /* private mode */ }
    loginError.textContent = "";
    loginButton.disabled = true;
    attempt = 0;
    takenRetries = 0;
    reconnecting = false;
    if (socket && socket.readyState === WebSocket.OPEN && !loggedIn) sendLogin();
    else connect();
  });

  sendForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim() || !loggedIn) return;
    const now = Date.now() / 1000;
    let sent;
    if (/^[/:\\]/.test(text)) {
      sent = command(text);
      if (sent) {
        const action = /^\/me\s+(.+)$/i.exec(text);
        if (action) {
          addLine("message action mine",
                  messageParts({time: now, from: me, text: action[1], action: true}, false));
        } else {
          addLine("echo", ["> " + text]);
        }
      }
    } else {
      sent = transmit({type: "say", text: text});
      if (sent) addLine("message mine", messageParts({time: now, from: me, text: text}, false));
    }
    if (sent) input.value = "";
  });

  $("rooms-refresh").addEventListener("click", refreshRooms);

  try {
    nameInput.value = localStorage.getItem("twisted-chat-name") || "";
  } catch (err) { /* private mode */ }
  showLogin();
})();
