"""A session persisted in a database column and resumed by "another worker"."""

import sqlite3

import _common

import allm

engine, offline = _common.chat_engine(
    __doc__,
    scripts=[[("text", "Hello Grace! How can I help?")], [("text", "You are Grace.")]],
)

db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE conversations (id TEXT PRIMARY KEY, session_json TEXT)")

# Request 1 (worker A): start, store.
session, result = allm.Session.start(engine, "Hi, I'm Grace.", id="conv-42")
print("assistant:", result.output_text)
db.execute("INSERT INTO conversations VALUES (?, ?)", (session.id, allm.dumps(session)))

# Request 2 (worker B): load, continue, store again.
(blob,) = db.execute("SELECT session_json FROM conversations WHERE id = ?",
                     ("conv-42",)).fetchone()
restored = allm.loads(blob)
_common.check(restored == session, "the session survived the database unchanged")
restored, result = restored.reply(engine, "Who am I?")
print("assistant:", result.output_text)
db.execute("UPDATE conversations SET session_json = ? WHERE id = ?",
           (allm.dumps(restored), restored.id))

print(f"status: {restored.status}, messages: {len(restored.messages)}")
_common.check(restored.status == "completed", "the turn completed")
_common.check("grace" in result.output_text.lower(), "the model remembers")
