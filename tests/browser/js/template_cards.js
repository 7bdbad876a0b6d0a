// Per template card (the cards `selector` matches): its workflow name (from data-testid), its title (the heading)
// and its description (the paragraph after the heading; "" where the card has none, as in frontend 1.58).
(selector) => [...document.querySelectorAll(selector)].map((card) => ({
  name: card.dataset.testid.replace("template-workflow-", ""),
  title: card.querySelector("h3")?.textContent.trim() ?? "",
  description: card.querySelector("h3 ~ p, h3 ~ * p")?.textContent.trim() ?? "",
}))
