// Runs once in the article view (Gradio's js_on_load: `element`, `trigger`, `watch`).
// 1. A click on a citation link anywhere on the page becomes this component's click event carrying the link's
//    key (`cite`); a click on a suggested question carries `ask`; "返回回答" scrolls back to the link last used.
// 2. After a new article, its highlighted sentence is scrolled into view (below the chat on a phone).
// 3. Gradio scrolls a chat to its bottom; a resident must see the top of a new answer instead, so the chat's
//    own autoscroll is off and each new turn is brought to the top here.
// 4. A passage the reader opened (引用段落) stays open when Gradio renders its bubble anew, as it does when the
//    follow-up suggestions arrive a moment after the answer.
const scrollable = (node) => {
  for (let box = node.parentElement; box; box = box.parentElement) {
    const style = getComputedStyle(box);
    if (/(auto|scroll)/.test(style.overflowY) && box.scrollHeight > box.clientHeight) return box;
  }
  return null;
};
// Where this script last scrolled the chat and the window: any other scroll is the reader's (see below).
const expected = {box: null, top: 0, y: 0};
const bringToTop = (node) => {
  const box = scrollable(node);
  if (box) {
    box.scrollTop += node.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
    Object.assign(expected, {box, top: box.scrollTop});
  }
  const top = node.getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.6) window.scrollBy(0, top - 8);
  expected.y = window.scrollY;
};
const onClick = (event) => {
  const link = event.target.closest ? event.target.closest('a.wd-cite, a.wd-ask, a.wd-back') : null;
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const key = (link.getAttribute('href') || '').slice(1);
  if (link.classList.contains('wd-back')) {
    const back = window.__wdReturnTo;
    if (back && back.isConnected) back.scrollIntoView({block: 'center'});
    else document.querySelector('#wd-chat')?.scrollIntoView({block: 'start'});
  } else if (link.classList.contains('wd-cite')) {
    window.__wdReturnTo = link;
    trigger('click', {cite: key});
  } else {
    trigger('click', {ask: key});
  }
};
if (window.__wdClickHandler) document.removeEventListener('click', window.__wdClickHandler, true);
window.__wdClickHandler = onClick;
document.addEventListener('click', onClick, true);

// A passage is known by its source link's key (wd-cite-<turn>-<n>), which a re-rendered bubble keeps. The click on
// its summary is recorded before the browser toggles it: a toggle event can land after the element is replaced.
window.__wdOpenPassages = window.__wdOpenPassages || new Set();
const passageKey = (details) => details.parentElement?.querySelector('a.wd-cite')?.getAttribute('href') || '';
const onSummary = (event) => {
  const summary = event.target.closest ? event.target.closest('details.wd-passage > summary') : null;
  if (!summary) return;
  const details = summary.parentElement, key = passageKey(details);
  if (!key) return;
  if (details.open) window.__wdOpenPassages.delete(key);
  else window.__wdOpenPassages.add(key);
};
if (window.__wdSummaryHandler) document.removeEventListener('click', window.__wdSummaryHandler, true);
window.__wdSummaryHandler = onSummary;
document.addEventListener('click', onSummary, true);
const reopenPassages = (chat) => {
  if (!window.__wdOpenPassages.size) return;
  for (const details of chat.querySelectorAll('details.wd-passage:not([open])'))
    if (window.__wdOpenPassages.has(passageKey(details))) details.open = true;
};

watch('value', () => {
  const hit = element.querySelector('.wd-hit');
  if (hit) hit.scrollIntoView({block: 'center', behavior: 'smooth'});
});

// The chat element is rendered anew at times, so the whole page is watched (once) and the chat looked up each
// time. A new turn's question is pinned to the top of the chat while its answer streams in and settles (Gradio
// lays a message out a moment after it arrives); the pin lets go 2 s after the answer, or as soon as anything but
// this script scrolls the chat or the page (the reader, or a link scrolled into view).
if (!window.__wdChatObserver) {
  let turns = 0, pinned = null, release = 0;
  const unpin = () => { pinned = null; };
  document.addEventListener('scroll', (event) => {
    const moved = event.target === document ? Math.abs(window.scrollY - expected.y) > 2
      : event.target === expected.box && Math.abs(expected.box.scrollTop - expected.top) > 2;
    if (moved) unpin();
  }, {capture: true, passive: true});
  window.__wdChatObserver = new MutationObserver((changes) => {
    const chat = document.querySelector('#wd-chat');
    if (!chat || !changes.some((change) => chat.contains(change.target))) return;
    reopenPassages(chat);
    const questions = chat.querySelectorAll("[data-testid='user']");
    if (questions.length < turns) {  // a new conversation: its turns reuse the keys
      turns = 0;
      window.__wdOpenPassages.clear();
    }
    if (questions.length > turns) {
      turns = questions.length;
      pinned = questions[questions.length - 1];
      release = 0;
    }
    if (!pinned) return;
    const answers = chat.querySelectorAll("[data-testid='bot']");
    const answer = answers[answers.length - 1];
    if (!release && answer && answers.length === turns && !answer.querySelector('.wd-thinking')) {
      release = Date.now() + 2000;
      setTimeout(() => { if (Date.now() >= release) unpin(); }, 2100);
    }
    const node = pinned;
    requestAnimationFrame(() => { if (node.isConnected) bringToTop(node); });
  });
  window.__wdChatObserver.observe(document.body, {childList: true, subtree: true, characterData: true});
}
