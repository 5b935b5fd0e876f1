"""How the load test (``tests/load_app.py``) drives the Analyze page in a browser session.

The page keeps showing a session's last result when the uploader is emptied, and while the
next upload is analysed (pages/1_Analyze.py: results survive navigation). So an upload's
answer is read under its own header (the unique file name the test gives it, shown with
``st.text``), from elements of the current script run: Streamlit marks what the previous run
drew ``data-stale`` until the new run replaces or removes it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: The "remove this file" button of an uploaded file (test ids of Streamlit 1.67, and older).
DELETE_BUTTON = ('.st-key-uploads [data-testid="stFileChipDeleteBtn"] button, '
                 '.st-key-uploads [data-testid="stFileUploaderDeleteBtn"] button')
#: Shown above the kept result when the uploader is empty (pages/1_Analyze.py).
KEPT_CAPTION = "Your last analysis in this session"
#: The text of the first "Predicted emotion:" alert after the header (``st.text``) that starts with
#: the argument, once the view under that header is drawn to its last widget (the "Download CSV"
#: button), all of it from the current script run (not ``data-stale``); null until then. Only then
#: has the page recorded the result as the one to keep: a rerun that interrupts the drawing (the
#: next upload emptying the uploader) would find nothing kept.
CURRENT_ANSWER_JS = """(header) => {
  const current = (node) => !node.closest('[data-stale="true"]');
  const title = [...document.querySelectorAll('[data-testid="stText"]')]
    .find((node) => node.innerText.startsWith(header) && current(node));
  if (!title) return null;
  const after = (selector, text) => [...document.querySelectorAll(selector)].find((node) =>
    node.innerText.includes(text) && current(node)
    && (title.compareDocumentPosition(node) & Node.DOCUMENT_POSITION_FOLLOWING));
  const answer = after('[data-testid="stAlert"]', 'Predicted emotion:');
  const drawn = after('[data-testid="stDownloadButton"]', 'Download CSV');
  return answer && drawn ? answer.innerText : null;
}"""


#: The Analyze page's file input, by its widget key: the "Calibrate to your voice" panel above it has one too.
UPLOADER = '.st-key-uploads [data-testid="stFileUploaderDropzoneInput"]'

@dataclasses.dataclass
class Session:
    """One browser session on the Analyze page.

    ``has_result``: an analysis was shown in it, so the page keeps showing it (under
    ``KEPT_CAPTION``) when the uploader is emptied; results survive until the next upload.
    """

    page: Any
    has_result: bool = False


async def open_session(browser: Any, url: str, *, timeout_ms: float) -> Session:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(timeout_ms)
    page = await context.new_page()
    await page.goto(f"{url}/Analyze")
    await page.locator(UPLOADER).wait_for(state="attached")
    return Session(page=page)


async def clear_uploads(session: Session) -> None:
    """Remove every file from the uploader, one delete button at a time, and wait for the page's
    rerun with the uploader empty (which shows the kept result when the session has one)."""
    page = session.page
    delete = page.locator(DELETE_BUTTON)
    removed = False
    while await delete.count():
        await delete.first.dispatch_event("click")
        removed = True
        await page.wait_for_timeout(50)
    if removed and session.has_result:
        await page.get_by_text(KEPT_CAPTION).first.wait_for()


async def upload_and_read(session: Session, *, name: str, data: bytes) -> str:
    """Replace the session's upload with ``data`` named ``name``; return the text of *this* upload's answer.

    The page keeps showing the previous result until the new one replaces it, so the answer is
    read only once the header of this upload (its unique file name, shown as ``st.text``) is
    there, and only from an element of the current script run (one from the previous run is
    marked ``data-stale`` while the new run has not replaced it).
    """
    page = session.page
    await clear_uploads(session)
    await page.locator(UPLOADER).set_input_files(
        files=[{"name": name, "mimeType": "audio/wav", "buffer": data}]
    )
    # Polled on a timer: animation frames (the default) are throttled in a page left in the background.
    handle = await page.wait_for_function(CURRENT_ANSWER_JS, arg=f"{name} · ", polling=100)
    text = await handle.json_value()
    session.has_result = True
    return text


async def upload_and_read_error(session: Session, *, name: str, data: bytes, phrase: str) -> str | None:
    """Upload a bad file; return the error shown (None if none with ``phrase`` appears, or an answer is shown)."""
    page = session.page
    await clear_uploads(session)
    await page.locator(UPLOADER).set_input_files(
        files=[{"name": name, "mimeType": "audio/wav", "buffer": data}]
    )
    alert = page.locator('[data-testid="stAlert"]').filter(has_text=phrase).first
    try:
        await alert.wait_for()
        # The kept result from the empty uploader's run goes when this run ends: an upload that
        # fails shows its error instead of any answer.
        await page.get_by_text("Predicted emotion:").first.wait_for(state="detached")
    except Exception:  # noqa: BLE001  a timeout is the failure being reported
        return None
    return (await alert.inner_text()).strip()
